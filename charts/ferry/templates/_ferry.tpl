{{/*
Helpers of the chart's own templates (the skeleton's shared ones are in _helpers.tpl).
*/}}

{{/* The image reference: the tag defaults to the chart's appVersion. */}}
{{- define "ferry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where the NATS credentials Secret and the NATS TLS Secret are mounted (read-only). */}}
{{- define "ferry.natsAuthDir" -}}/etc/ferry/nats-auth{{- end }}
{{- define "ferry.natsTlsDir" -}}/etc/ferry/nats-tls{{- end }}

{{/* Whether the NATS credentials Secret is mounted as files (every type but user/password). */}}
{{- define "ferry.natsAuthMounted" -}}
{{- if has .Values.nats.auth.type (list "creds" "nkey" "token") }}true{{- end }}
{{- end }}

{{/*
The container's arguments: `ferry controller` and one flag per value, each a flag
`ferry controller --help` lists. Pod-specific values (the Lease namespace, the identity) come from
POD_NAMESPACE and POD_NAME in the environment, which the operator reads as their defaults.
*/}}
{{- define "ferry.args" -}}
{{- $v := .Values -}}
- controller
- {{ printf "--nats-url=%s" $v.nats.url | quote }}
- {{ printf "--http-address=0.0.0.0:%d" (int $v.http.port) | quote }}
{{- if $v.webhook.enabled }}
- {{ printf "--webhook-address=0.0.0.0:%d" (int $v.webhook.port) | quote }}
{{- end }}
- {{ printf "--leader-elect=%t" $v.leaderElection.enabled | quote }}
- {{ printf "--lease-name=%s" $v.leaderElection.leaseName | quote }}
- {{ printf "--lease-duration=%d" (int $v.leaderElection.leaseDuration) | quote }}
- {{ printf "--renew-deadline=%d" (int $v.leaderElection.renewDeadline) | quote }}
- {{ printf "--retry-period=%d" (int $v.leaderElection.retryPeriod) | quote }}
- {{ printf "--log-level=%s" $v.logLevel | quote }}
- {{ printf "--nats-replicas=%v" $v.nats.replicas | quote }}
{{- with $v.nats.fallbackPlacement.cluster }}
- {{ printf "--fallback-placement-cluster=%s" . | quote }}
{{- end }}
{{- with $v.nats.fallbackPlacement.tags }}
- {{ printf "--fallback-placement-tags=%s" (join "," .) | quote }}
{{- end }}
{{- with $v.ssrf.allowCidrs }}
- {{ printf "--allow-cidrs=%s" (join "," .) | quote }}
{{- end }}
{{- with $v.ssrf.denyCidrs }}
- {{ printf "--deny-cidrs=%s" (join "," .) | quote }}
{{- end }}
- {{ printf "--pipeline-replicas=%v" $v.pipelineReplicas | quote }}
- {{ printf "--transform-workers=%d" (int $v.transformWorkers) | quote }}
- {{ printf "--sync-lock-ttl=%d" (int $v.syncLockTtl) | quote }}
- {{ printf "--concurrency=%d" (int $v.concurrency) | quote }}
{{- with $v.watchNamespaces }}
- {{ printf "--watch-namespaces=%s" (join "," .) | quote }}
{{- end }}
{{- $auth := $v.nats.auth }}
{{- if eq $auth.type "creds" }}
- {{ printf "--nats-creds=%s/%s" (include "ferry.natsAuthDir" .) $auth.credsKey | quote }}
{{- else if eq $auth.type "nkey" }}
- {{ printf "--nats-nkey=%s/%s" (include "ferry.natsAuthDir" .) $auth.nkeyKey | quote }}
{{- else if eq $auth.type "token" }}
- {{ printf "--nats-token-file=%s/%s" (include "ferry.natsAuthDir" .) $auth.tokenKey | quote }}
{{- else if eq $auth.type "userPassword" }}
- {{ printf "--nats-user=%s" $auth.user | quote }}
{{- end }}
{{- if $v.nats.tls.enabled }}
- {{ printf "--nats-tls-ca=%s/%s" (include "ferry.natsTlsDir" .) $v.nats.tls.caKey | quote }}
{{- if $v.nats.tls.clientCert }}
- {{ printf "--nats-tls-cert=%s/%s" (include "ferry.natsTlsDir" .) $v.nats.tls.certKey | quote }}
- {{ printf "--nats-tls-key=%s/%s" (include "ferry.natsTlsDir" .) $v.nats.tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- range $v.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
