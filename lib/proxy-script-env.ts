/** The proxy process's script for proxy/master.ts: lib/ecosystem.ts sets it to the compiled build; unset, master.ts runs proxy/main.ts beside it. */
export const PROXY_SCRIPT_ENV = 'SWITCHYARD_PROXY_SCRIPT';
