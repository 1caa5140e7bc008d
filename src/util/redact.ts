/**
 * One place that hides credentials in URLs before they are shown or stored: logs, events,
 * status documents, database rows. A repository or broker URL may carry a user and password
 * (`https://user:secret@host/`) or a token in its query (`?token=...`); neither may leave the
 * process that needs it.
 */

/** Query parameters whose values are secrets (signed URLs, API keys, bearer tokens). */
const SECRET_PARAM = /^(?:token|access[_-]?token|auth|authorization|key|api[_-]?key|secret|password|passwd|pwd|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;

/** The same URL with the user info replaced by `***` and secret query values by `***`. */
export function redactUrl(url: string): string {
  return redactText(url);
}

/**
 * Every URL inside free text (an error message that quotes a URL) redacted: user info
 * (`scheme://user:pass@` -> `scheme://***@`) and secret query values.
 */
export function redactText(text: string): string {
  if (!text) return text;
  // scheme://anything-without-slash-or-space@  ->  scheme://***@
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@'"<>]*@/gi, '$1***@');
  out = out.replace(/([?&])([^=&#\s'"<>]+)=([^&#\s'"<>]*)/g, (whole, sep: string, name: string) => {
    let decoded = name;
    try {
      decoded = decodeURIComponent(name);
    } catch {
      // not percent-encoded text: use as is
    }
    return SECRET_PARAM.test(decoded) ? `${sep}${name}=***` : whole;
  });
  return out;
}

/** Whether a URL carries credentials (for a one-time warning that they are hidden). */
export function hasCredentials(url: string): boolean {
  return redactText(url) !== url;
}
