{{- define "xks-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "xks-proxy.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "xks-proxy.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "xks-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xks-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "xks-proxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "xks-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "xks-proxy.tlsSecret" -}}
{{- if .Values.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "xks-proxy.fullname" .) -}}
{{- else -}}
{{- required "tls.existingSecret (or tls.certManager.enabled) is required" .Values.tls.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The proxy's TOML configuration; secrets are only paths to mounted files. The settings that
apply only at start come first: their checksum rolls the pods. The rest ([tls], the key stores)
the proxy reloads live when the mounted ConfigMap or Secrets change (reload_on_change). */}}
{{- define "xks-proxy.config" -}}
{{ include "xks-proxy.restartConfig" . }}
{{ include "xks-proxy.liveConfig" . }}
{{- end }}

{{- define "xks-proxy.restartConfig" -}}
[log]
format = {{ .Values.proxy.logFormat | quote }}

{{- if .Values.proxy.audit.enabled }}

[audit]
path = "-"
on_full = {{ .Values.proxy.audit.onFull | quote }}
unauthenticated_per_second = {{ .Values.proxy.audit.unauthenticatedPerSecond }}
{{- if .Values.proxy.audit.keySecret.existingSecret }}
key_file = "/etc/xks-proxy/audit-key/{{ .Values.proxy.audit.keySecret.key }}"
{{- end }}
{{- end }}

[server]
listen = "0.0.0.0:{{ .Values.proxy.port }}"
admin_listen = "0.0.0.0:{{ .Values.proxy.adminPort }}"
io_threads = {{ .Values.proxy.ioThreads }}
request_deadline_ms = {{ .Values.proxy.requestDeadlineMs }}
max_body_bytes = {{ .Values.proxy.maxBodyBytes }}
max_connections = {{ .Values.proxy.maxConnections }}
max_connections_per_client = {{ .Values.proxy.maxConnectionsPerClient }}
max_handshakes_in_flight = {{ .Values.proxy.maxHandshakesInFlight }}
admin_max_connections = {{ .Values.proxy.adminMaxConnections }}
fleet_size = {{ if .Values.autoscaling.enabled }}{{ .Values.autoscaling.maxReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
reload_on_change = true
{{- if .Values.hsm.fleet }}
{{- range .Values.hsm.fleet }}

[[hsm]]
name = {{ required "hsm.fleet[].name is required" .name | quote }}
module = {{ .module | default $.Values.hsm.module | quote }}
{{- with .initReserved | default $.Values.hsm.initReserved }}
init_reserved = {{ . | quote }}
{{- end }}
vendor_profile = {{ .vendorProfile | default $.Values.hsm.vendorProfile | quote }}
token_label = {{ required "hsm.fleet[].tokenLabel is required" .tokenLabel | quote }}
pin_file = "/etc/xks-proxy/pin/{{ .pinKey | default $.Values.hsm.pin.key }}"
{{- include "xks-proxy.hsmSettings" (dict "hsm" $.Values.hsm "sessions" .sessions "workers" .workers) }}
{{- end }}
{{- else }}

[hsm]
module = {{ .Values.hsm.module | quote }}
{{- with .Values.hsm.initReserved }}
init_reserved = {{ . | quote }}
{{- end }}
vendor_profile = {{ .Values.hsm.vendorProfile | quote }}
token_label = {{ .Values.hsm.tokenLabel | quote }}
pin_file = "/etc/xks-proxy/pin/{{ .Values.hsm.pin.key }}"
{{- include "xks-proxy.hsmSettings" (dict "hsm" .Values.hsm "sessions" .Values.hsm.sessions "workers" .Values.hsm.workers) }}
{{- end }}
{{- end }}

{{- define "xks-proxy.liveConfig" -}}
[tls]
certificate_chain = "/etc/xks-proxy/tls/tls.crt"
private_key = "/etc/xks-proxy/tls/tls.key"
{{- if .Values.tls.clientCA.existingSecret }}
client_ca = "/etc/xks-proxy/client-ca/{{ .Values.tls.clientCA.key }}"
{{- $_ := required "tls.clientCA.allowedNames is required with tls.clientCA.existingSecret: the names KMS's client certificate carries" (first .Values.tls.clientCA.allowedNames) }}
client_names = [{{ range $i, $name := .Values.tls.clientCA.allowedNames }}{{ if $i }}, {{ end }}{{ $name | quote }}{{ end }}]
{{- end }}
{{- range .Values.keystores }}

[[keystore]]
prefix = {{ .prefix | quote }}
regions = [{{ range $i, $region := .regions }}{{ if $i }}, {{ end }}{{ $region | quote }}{{ end }}]
keys = [{{ range $i, $key := .keys }}{{ if $i }}, {{ end }}{{ $key | quote }}{{ end }}]
{{- if .allowUnprotectedKeys }}
allow_unprotected_keys = true
{{- end }}
{{- if .blocked }}
blocked = true
{{- with .blockedBy }}
blocked_by = {{ . | quote }}
{{- end }}
{{- with .blockedReason }}
blocked_reason = {{ . | quote }}
{{- end }}
{{- end }}
{{- with .quota }}

[keystore.quota]
{{- with .requestsPerSecond }}
requests_per_second = {{ . }}
{{- end }}
{{- with .burst }}
burst = {{ . }}
{{- end }}
{{- with .perKeyRequestsPerSecond }}
per_key_requests_per_second = {{ . }}
{{- end }}
{{- with .perKeyBurst }}
per_key_burst = {{ . }}
{{- end }}
{{- end }}
{{- with .awsSampleProxy }}

[keystore.aws_sample_proxy]
{{- with .ciphertextMetadata }}
ciphertext_metadata = {{ . | quote }}
{{- end }}
{{- end }}
{{- range .credentials }}

[[keystore.credential]]
access_key_id = {{ .accessKeyId | quote }}
secret_file = "/etc/xks-proxy/sigv4/{{ .secretKey }}"
{{- end }}
{{- range .rules }}
{{- $rule := . }}

[[keystore.rule]]
id = {{ .id | quote }}
effect = {{ .effect | quote }}
{{- range $key, $field := dict "operations" "operations" "keyIds" "key_ids" "kmsOperations" "kms_operations" "principals" "principals" "kmsKeyArns" "kms_key_arns" "viaServices" "via_services" "sourceVpcs" "source_vpcs" "sourceVpces" "source_vpces" }}
{{- with index $rule $key }}
{{ $field }} = [{{ range $i, $pattern := . }}{{ if $i }}, {{ end }}{{ $pattern | quote }}{{ end }}]
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{ end -}}

{{/* One HSM's sizing, health key and circuit breaker (the breaker's settings are the chart's). */}}
{{- define "xks-proxy.hsmSettings" -}}
{{- with .sessions }}
sessions = {{ . }}
{{- end }}
{{- with .workers }}
workers = {{ . }}
{{- end }}
health_key = {{ .hsm.healthKey | quote }}
{{- with .hsm.circuitBreaker }}
{{- if or .consecutiveFailures .failurePercent .minimumCalls .windowMs .openMs .maxOpenMs }}

[hsm.circuit_breaker]
{{- with .consecutiveFailures }}
consecutive_failures = {{ . }}
{{- end }}
{{- with .failurePercent }}
failure_percent = {{ . }}
{{- end }}
{{- with .minimumCalls }}
minimum_calls = {{ . }}
{{- end }}
{{- with .windowMs }}
window_ms = {{ . }}
{{- end }}
{{- with .openMs }}
open_ms = {{ . }}
{{- end }}
{{- with .maxOpenMs }}
max_open_ms = {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
