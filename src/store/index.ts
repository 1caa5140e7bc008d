export { openDatabase, migrate, DB_FILE, type Db, type Migration } from './database.js';
