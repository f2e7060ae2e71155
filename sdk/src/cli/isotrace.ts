#!/usr/bin/env node
// The `isotrace` command. Today it has one subcommand: `isotrace audit`.
import { AUDIT_USAGE, auditCommand, EXIT } from './internal/audit-command.js';

const io = { out: (line: string) => console.log(line), err: (line: string) => console.error(line) };
const [command, ...args] = process.argv.slice(2);

if (command === 'audit') {
  process.exitCode = await auditCommand(args, io);
} else {
  io.err(command === undefined || command === '--help' || command === '-h' ? AUDIT_USAGE : `isotrace: unknown command '${command}'.\n\n${AUDIT_USAGE}`);
  process.exitCode = command === '--help' || command === '-h' ? EXIT.clean : EXIT.usage;
}
