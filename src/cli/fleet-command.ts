import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { EdgeloopError } from '../errors.js';
import type { ReleaseNotice } from '../sync/index.js';

const sync = () => import('../sync/index.js'); // loaded by the command that runs, not at start-up
import { print } from './models-command.js';
import { fail, table } from './output.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Operator commands: make a signing key, publish signed releases to a static repository. */
export function registerFleet(program: Command): void {
  program
    .command('keygen')
    .description('create an Ed25519 release signing key: <out> (private, mode 0600) and <out>.pub (for the devices)')
    .requiredOption('--out <file>', 'private key file to write')
    .option('--force', 'overwrite existing key files')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  edgeloop keygen --out ops.key   # keep ops.key secret; ship ops.key.pub to devices (sync.trustedKeys)')
    .action(async (o: { out: string; force?: boolean; json?: boolean }) => {
      try {
        const { privatePem, publicPem, keyid } = (await sync()).generateSigningKey();
        await fs.mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
        // Always a new file created 0600: writing over an old 0644 one would show the secret before a chmod.
        if (o.force) await fs.rm(o.out, { force: true });
        await fs.writeFile(o.out, privatePem, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
          throw err.code === 'EEXIST' ? new EdgeloopError('EDGELOOP_USAGE', `${o.out} exists; pass --force to replace it (devices trusting the old key will refuse new releases)`) : err;
        });
        await fs.chmod(o.out, 0o600);
        await fs.writeFile(`${o.out}.pub`, publicPem, { mode: 0o644, flag: 'w' });
        print(o, { keyid, privateKey: o.out, publicKey: `${o.out}.pub` }, () => `key ${keyid}\n  private: ${o.out} (keep it secret)\n  public:  ${o.out}.pub (add it to sync.trustedKeys on the devices)\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('publish <bundles...>')
    .description('publish bundles to a static release repository: content-addressed blobs + signed channel metadata with the next serial')
    .requiredOption('--repo <dir>', 'release repository folder (served by nginx, S3, a CDN)')
    .requiredOption('--key <file>', 'private signing key (repeat during a key rotation)', collect)
    .option('--channel <name>', 'release channel', 'stable')
    .option('--rollout <percent>', 'share of devices that take part, 0-100 (0 pauses a release)', (v) => Number(v), 100)
    .option('--expires <duration>', 'devices refuse the metadata after this long (e.g. 7d, 12h)', '7d')
    .option('--rollback', 'an operator-ordered rollback: the versions may be older than those released before')
    .option('--announce <broker-url>', 'also publish the retained notice on edgeloop/fleet/<channel>/release (e.g. mqtt://broker:1883)')
    .option('--base-url <url>', 'public URL of the repository, put in the notice for people reading it')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExamples:\n  edgeloop publish ./digits-1.1.0 --channel stable --key ops.key --repo /srv/releases --rollout 20 --announce mqtt://broker:1883\n' +
        '  edgeloop publish ./digits-1.0.0 --channel stable --key ops.key --repo /srv/releases --rollback',
    )
    .action(async (bundles: string[], o: { repo: string; key: string[]; channel: string; rollout: number; expires: string; rollback?: boolean; announce?: string; baseUrl?: string; json?: boolean }) => {
      try {
        if (!/^[A-Za-z0-9._-]{1,64}$/.test(o.channel)) throw new EdgeloopError('EDGELOOP_USAGE', `'--channel' must be letters, digits, . _ - (got '${o.channel}')`);
        const { loadSigningKey, publishRelease, parseDuration, announceRelease } = await sync();
        const keys = await Promise.all(o.key.map((k) => loadSigningKey(k)));
        const result = await publishRelease({
          repo: o.repo,
          channel: o.channel,
          bundles,
          keys,
          rollout: o.rollout,
          expiresInMs: parseDuration(o.expires),
          rollback: o.rollback ?? false,
        });
        const s = result.metadata.signed;
        let announced: string | null = null;
        if (o.announce) {
          const notice: ReleaseNotice = {
            type: 'edgeloop-release-notice/1',
            channel: s.channel,
            serial: s.serial,
            url: o.baseUrl ? `${o.baseUrl.replace(/\/+$/, '')}/channels/${s.channel}.json` : undefined,
            models: Object.fromEntries(Object.entries(s.models).map(([name, e]) => [name, e.version])),
          };
          announced = await announceRelease(o.announce, notice);
        }
        print(o, { file: result.file, serial: s.serial, previousSerial: result.previousSerial, expires: s.expires, models: s.models, blobs: result.blobs, announced }, () => {
          const rows = Object.entries(s.models).map(([name, e]) => [name, e.version, `${e.rollout}%`, e.rollback ? 'yes' : 'no', e.bundle.sha256.slice(0, 12)]);
          return (
            `channel ${s.channel}: serial ${result.previousSerial ?? '-'} -> ${s.serial}, expires ${s.expires}, ${result.blobs.written} blobs written, ${result.blobs.reused} already there\n` +
            table(['model', 'version', 'rollout', 'rollback', 'bundle'], rows) +
            (announced ? `announced on ${announced}\n` : '')
          );
        });
      } catch (err) {
        fail(err);
      }
    });
}
