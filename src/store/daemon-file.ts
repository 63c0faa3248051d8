/**
 * The file in a store's root that says a daemon serves it, and where (see store/daemon.ts).
 * In a module of its own so that every command can look for it without loading the daemon client.
 */
export const DAEMON_FILE = 'DAEMON'
