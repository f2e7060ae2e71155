#!/usr/bin/env node
// The `isotrace` command. Today it has one subcommand: `isotrace audit`.
import { AUDIT_USAGE, auditCommand, EXIT } from './internal/audit-command.js';

const io = { out: (line: string) => console.log(line), err: (line: string) => console.error(line) };
const [command, ...args] = process.argv.slice(2);

if (command === 'audit') {
  process.exitCode = await auditCommand(args, io);
} else if (command === '--help' || command === '-h') {
  io.out(AUDIT_USAGE);
  process.exitCode = EXIT.clean;
} else {
  io.err(command === undefined ? AUDIT_USAGE : `isotrace: unknown command '${command}'.\n\n${AUDIT_USAGE}`);
  process.exitCode = EXIT.usage;
}
