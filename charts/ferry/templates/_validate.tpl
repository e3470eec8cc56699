{{/*
Checks across values that values.schema.json cannot express; each failure says what to change.
Included once, from deployment.yaml.
*/}}
{{- define "ferry.validate" -}}
{{- $le := .Values.leaderElection }}
{{- if and (not $le.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "leaderElection.enabled=false needs replicaCount: 1 (got %d): without a Lease every replica would reconcile and write status" (int .Values.replicaCount)) }}
{{- end }}
{{- if not (and (gt (int $le.leaseDuration) (int $le.renewDeadline)) (gt (int $le.renewDeadline) (int $le.retryPeriod))) }}
{{- fail (printf "leaderElection: leaseDuration (%d) > renewDeadline (%d) > retryPeriod (%d) must hold" (int $le.leaseDuration) (int $le.renewDeadline) (int $le.retryPeriod)) }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (ge (int .Values.replicaCount) 2) (ge (int $pdb.minAvailable) (int .Values.replicaCount)) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below replicaCount (%d), or no node could ever be drained" (int $pdb.minAvailable) (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
