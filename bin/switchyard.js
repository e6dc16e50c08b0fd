#!/usr/bin/env node
// The `switchyard` command: a thin ESM shim that loads the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
