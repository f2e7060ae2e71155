#!/usr/bin/env node
// The `isotrace` command. Today it has one subcommand: `isotrace audit`.
import { AUDIT_USAGE, auditCommand, EXIT } from './internal/audit-command.js';

const io = { out: (line: string) => console.log(line), err: (line: string) => console.error(line) };
const [command, ...args] = process.argv.slice(2);

if (command === 'audit') {
  try {
    process.exitCode = await auditCommand(args, io);
  } catch (error) {
    // An uncaught error would exit 1, which means "violations found"; a crash means the audit did not run.
    io.err(`isotrace audit: internal error, nothing was audited: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = EXIT.usage;
  }
} else if (command === '--help' || command === '-h') {
  io.out(AUDIT_USAGE);
  process.exitCode = EXIT.clean;
} else {
  io.err(command === undefined ? AUDIT_USAGE : `isotrace: unknown command '${command}'.\n\n${AUDIT_USAGE}`);
  process.exitCode = EXIT.usage;
}
