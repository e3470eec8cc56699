/** Usage texts of `ferry fallback` and its subcommands (one module, so each subcommand loads only what it runs). */
import { ALL_NAMESPACES_USAGE, KUBE_USAGE, NAMESPACE_USAGE, NATS_USAGE } from '../cli-args.ts';
import { SELECTION_USAGE } from './fallback-target.ts';

export const fallbackUsage = (prog: string): string => `Usage: ${prog} fallback <ls|show|redrive|purge> [flags]

What could not be delivered: the messages parked in fallback streams.

Commands:
  ls [NAME]        parked messages per Integration and SyncSchedule: count by reason and by age
  show NAME        the messages, with their headers and payload
  redrive NAME     ask the operator to deliver them again (an Integration)
  purge NAME       delete them

NAME is an Integration; write syncschedule/NAME for a SyncSchedule.
Run ${prog} fallback <command> --help for its flags.
`;

export const lsUsage = (prog: string): string => `Usage: ${prog} fallback ls [NAME] [flags]

Per Integration and SyncSchedule, the messages in its fallback stream: how many, by Ferry-Reason,
and by age (oldest, newest; under an hour, under a day, older).

Flags:
${NAMESPACE_USAGE}
${ALL_NAMESPACES_USAGE}
${NATS_USAGE}
  -o, --output FORMAT      json or yaml instead of a table
${KUBE_USAGE}
                           (these two only pick the default namespace)
`;

export const showUsage = (prog: string): string => `Usage: ${prog} fallback show NAME [flags]

The parked messages of one Integration (or syncschedule/NAME), with headers and payload.

Flags:
${NAMESPACE_USAGE}
${SELECTION_USAGE} (default 100)
  -o, --output FORMAT      text (default), json or yaml
${NATS_USAGE}
${KUBE_USAGE}
                           (these two only pick the default namespace)
`;

export const purgeUsage = (prog: string): string => `Usage: ${prog} fallback purge NAME [flags]

Deletes the selected parked messages (every message without a selection flag). Asks for
confirmation on a terminal; without a terminal --yes is required.

Flags:
${NAMESPACE_USAGE}
${SELECTION_USAGE}
  --yes                    do not ask
${NATS_USAGE}
${KUBE_USAGE}
                           (these two only pick the default namespace)
`;

export const redriveUsage = (prog: string): string => `Usage: ${prog} fallback redrive NAME [flags]

Asks the operator to redrive the Integration's fallback messages: sets the ferry.dev/redrive
annotation to a new request id, with the filters below as ferry.dev/redrive-* annotations. The
operator answers in status.lastRedrive.

Flags:
${NAMESPACE_USAGE}
  --reason R[,R]           only these Ferry-Reasons: invalid, transform, exhausted, rejected, contract
  --from-seq N, --to-seq N fallback stream sequences (inclusive)
  --older-than D           only messages parked at least D ago (e.g. 1h)
  --newer-than D           only messages parked at most D ago (e.g. 24h)
  --wait                   wait for the outcome; exit 0 when Succeeded, 1 otherwise
  --timeout D              how long --wait waits (default 10m)
${KUBE_USAGE}
`;
