{{/*
Named templates of the redis-sidecar chart.

Every template takes the chart's scope: `.` inside this chart, or, from a parent chart that
depends on this one, `.Subcharts.<name or alias>` (Helm >= 3.7), e.g.

  initContainers:
    {{- include "redis-sidecar.initContainers" .Subcharts.redisSidecar | nindent 8 }}

Object names use a fixed base name ("redis-sidecar", or nameOverride) rather than .Chart.Name,
so the parent's includes and this chart's own objects (Secret, ServiceAccount …) agree.

Public (documented in docs/kubernetes.md):
  redis-sidecar.initContainers   the sidecar as a native sidecar (sidecar.native=true), else nothing
  redis-sidecar.containers       the sidecar as a regular container (sidecar.native=false), else nothing
  redis-sidecar.container        the sidecar container itself (a list item), either variant
  redis-sidecar.volumes          the pod volumes the sidecar needs (list items, maybe none)
  redis-sidecar.appVolumeMounts  mounts for the app container (the unix socket dir), maybe none
  redis-sidecar.podAnnotations   annotations that roll the pod when the rendered Secret changes
  redis-sidecar.serviceAccountName
*/}}

{{- define "redis-sidecar.name" -}}
{{- default "redis-sidecar" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "redis-sidecar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "redis-sidecar.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "redis-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "redis-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "redis-sidecar.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "redis-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The pods the sidecar runs in: podSelector, or the demo workload's labels. */}}
{{- define "redis-sidecar.podSelector" -}}
{{- if .Values.podSelector }}
{{- toYaml .Values.podSelector }}
{{- else }}
{{- include "redis-sidecar.selectorLabels" . }}
{{- end }}
{{- end }}

{{- define "redis-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "redis-sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "redis-sidecar.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The upstream, normalized from externalRedis.host/port/… or externalRedis.url, as YAML:
host, port, addr (always host:port, IPv6 in brackets), tls, db, username, password.
Use: $u := include "redis-sidecar.upstream" . | fromYaml
*/}}
{{- define "redis-sidecar.upstream" -}}
{{- $r := .Values.externalRedis }}
{{- $u := dict "host" $r.host "port" (int $r.port) "tls" $r.tls.enabled "db" (int $r.database) "username" $r.username "password" $r.password }}
{{- with $r.url }}
{{- /* scheme://[user[:password]@]host[:port][/db]; the schema checks the same shape. */}}
{{- $re := `^(rediss?)://(?:([^:@/]*)(?::([^@/]*))?@)?(\[[0-9a-fA-F:.]+\]|[^:@/\[\]]+)(?::([0-9]+))?(?:/([0-9]*))?$` }}
{{- if not (regexMatch $re .) }}
{{- fail "externalRedis.url must look like redis[s]://[user[:password]@]host[:port][/db]" }}
{{- end }}
{{- if contains "%" (regexReplaceAll $re . "${2}${3}") }}
{{- fail "externalRedis.url: percent-encoded user names or passwords are not supported; use externalRedis.password or externalRedis.existingSecret" }}
{{- end }}
{{- $_ := set $u "tls" (eq (regexReplaceAll $re . "${1}") "rediss") }}
{{- $_ = set $u "username" (regexReplaceAll $re . "${2}") }}
{{- $_ = set $u "password" (regexReplaceAll $re . "${3}") }}
{{- $_ = set $u "host" (regexReplaceAll $re . "${4}" | trimPrefix "[" | trimSuffix "]") }}
{{- $_ = set $u "port" (regexReplaceAll $re . "${5}" | default "6379" | int) }}
{{- $_ = set $u "db" (regexReplaceAll $re . "${6}" | default "0" | int) }}
{{- end }}
{{- if not $u.host }}
{{- fail "externalRedis.host (or externalRedis.url) is required: the cache's endpoint, e.g. master.my-cache.abc123.use1.cache.amazonaws.com" }}
{{- end }}
{{- if contains ":" $u.host }}
{{- $_ := set $u "addr" (printf "[%s]:%d" $u.host $u.port) }}
{{- else }}
{{- $_ := set $u "addr" (printf "%s:%d" $u.host $u.port) }}
{{- end }}
{{- toYaml $u }}
{{- end }}

{{/* Name of the Secret holding the password: existingSecret, the rendered one, or "". */}}
{{- define "redis-sidecar.authSecretName" -}}
{{- $u := include "redis-sidecar.upstream" . | fromYaml }}
{{- if .Values.externalRedis.existingSecret }}
{{- .Values.externalRedis.existingSecret }}
{{- else if $u.password }}
{{- printf "%s-auth" (include "redis-sidecar.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The Secret the chart renders from externalRedis.password (or the url's), or nothing. */}}
{{- define "redis-sidecar.secret" -}}
{{- $u := include "redis-sidecar.upstream" . | fromYaml }}
{{- if and $u.password (not .Values.externalRedis.existingSecret) }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "redis-sidecar.authSecretName" . }}
  labels:
    {{- include "redis-sidecar.labels" . | nindent 4 }}
type: Opaque
data:
  password: {{ $u.password | b64enc | quote }}
{{- end }}
{{- end }}

{{/* The projected sources of the secrets directory: password [+ username], CA, client password. */}}
{{- define "redis-sidecar.secretSources" -}}
{{- $r := .Values.externalRedis }}
{{- with include "redis-sidecar.authSecretName" . }}
- secret:
    name: {{ . }}
    items:
      - key: {{ ternary $r.existingSecretPasswordKey "password" (ne $r.existingSecret "") }}
        path: password
      {{- if and $r.existingSecret $r.existingSecretUsernameKey }}
      - key: {{ $r.existingSecretUsernameKey }}
        path: username
      {{- end }}
{{- end }}
{{- with $r.tls.caSecret }}
- secret:
    name: {{ . }}
    items:
      - key: {{ $r.tls.caSecretKey }}
        path: ca.crt
{{- end }}
{{- with .Values.sidecar.clientAuth.existingSecret }}
- secret:
    name: {{ . }}
    items:
      - key: {{ $.Values.sidecar.clientAuth.key }}
        path: client-password
{{- end }}
{{- end }}

{{- define "redis-sidecar.socketPath" -}}
{{- printf "%s/%s" (.Values.sidecar.socket.dir | trimSuffix "/") .Values.sidecar.socket.name }}
{{- end }}

{{/*
Fails unless sidecar.cluster.ports is a usable range: 1 <= first <= last <= 65535 (the schema
checks only the shape), holding neither the listener's port nor httpPort (the node ports are bound
on the listener's address in the pod's shared network namespace).
*/}}
{{- define "redis-sidecar.checkClusterPorts" -}}
{{- $s := .Values.sidecar }}
{{- $r := splitList "-" $s.cluster.ports }}
{{- $first := index $r 0 | atoi }}
{{- $last := index $r (sub (len $r) 1) | atoi }}
{{- if or (ne (len $r) 2) (lt $first 1) (gt $last 65535) (gt $first $last) }}
{{- fail (printf "sidecar.cluster.ports must be first-last with 1 <= first <= last <= 65535, e.g. 7000-7099; got %q" $s.cluster.ports) }}
{{- end }}
{{- if ne $s.listen "off" }}
{{- $lp := regexFind "[0-9]+$" $s.listen | atoi }}
{{- if and (le $first $lp) (le $lp $last) }}
{{- fail (printf "sidecar.cluster.ports (%s) holds the listener's port %d (sidecar.listen): pick a range outside it" $s.cluster.ports $lp) }}
{{- end }}
{{- end }}
{{- $hp := int $s.httpPort }}
{{- if and (le $first $hp) (le $hp $last) }}
{{- fail (printf "sidecar.cluster.ports (%s) holds the admin port %d (sidecar.httpPort): pick a range outside it" $s.cluster.ports $hp) }}
{{- end }}
{{- end }}

{{/* The sidecar's environment. No secret ever appears here: secrets are files. */}}
{{- define "redis-sidecar.env" -}}
{{- $u := include "redis-sidecar.upstream" . | fromYaml }}
{{- $s := .Values.sidecar -}}
- name: REDIS_ADDR
  value: {{ $u.addr | quote }}
{{- if and $u.username (not .Values.externalRedis.existingSecretUsernameKey) }}
- name: REDIS_USERNAME
  value: {{ $u.username | quote }}
{{- end }}
- name: REDIS_DB
  value: {{ $u.db | quote }}
- name: REDIS_TLS_ENABLED
  value: {{ $u.tls | quote }}
{{- if $u.tls }}
- name: REDIS_TLS_SKIP_VERIFY
  value: {{ .Values.externalRedis.tls.skipVerify | quote }}
{{- with .Values.externalRedis.tls.serverName }}
- name: REDIS_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- end }}
- name: REDIS_MAX_CONNECTIONS
  value: {{ $s.pool.maxConnections | quote }}
- name: REDIS_MIN_IDLE_CONNECTIONS
  value: {{ $s.pool.minIdleConnections | quote }}
- name: REDIS_CONNECTION_TIMEOUT
  value: {{ $s.pool.connectionTimeout | quote }}
- name: REDIS_SIDECAR_LISTEN
  value: {{ $s.listen | quote }}
{{- if $s.socket.enabled }}
- name: REDIS_SIDECAR_SOCKET
  value: {{ include "redis-sidecar.socketPath" . | quote }}
{{- end }}
- name: REDIS_SIDECAR_HTTP_ADDR
  value: {{ printf "0.0.0.0:%d" (int $s.httpPort) | quote }}
{{- if include "redis-sidecar.secretSources" . }}
- name: REDIS_SIDECAR_SECRETS_DIR
  value: {{ $s.secretsDir | quote }}
{{- end }}
{{- if and (eq $s.clientAuth.mode "passthrough") $s.clientAuth.existingSecret }}
{{- fail "sidecar.clientAuth.mode=passthrough lets the upstream check each client's AUTH: sidecar.clientAuth.existingSecret (a local password) cannot be set with it" }}
{{- end }}
- name: REDIS_SIDECAR_CLIENT_AUTH
  value: {{ $s.clientAuth.mode | quote }}
{{- if $s.clientAuth.existingSecret }}
- name: REDIS_SIDECAR_CLIENT_PASSWORD_FILE
  value: {{ printf "%s/client-password" ($s.secretsDir | trimSuffix "/") | quote }}
{{- end }}
- name: REDIS_SIDECAR_READINESS
  value: {{ $s.readiness | quote }}
{{- include "redis-sidecar.checkClusterPorts" . }}
- name: REDIS_SIDECAR_CLUSTER
  value: {{ $s.cluster.mode | quote }}
- name: REDIS_SIDECAR_CLUSTER_PORTS
  value: {{ $s.cluster.ports | quote }}
{{- with $s.iam }}
{{- if .enabled }}
{{- if or $u.password $.Values.externalRedis.existingSecret }}
{{- fail "sidecar.iam.enabled: IAM authenticates with a token instead of a password; remove externalRedis.password (or the url's) and externalRedis.existingSecret" }}
{{- end }}
{{- if not $u.tls }}
{{- fail "sidecar.iam.enabled needs TLS (externalRedis.tls.enabled: true): ElastiCache accepts IAM only with in-transit encryption" }}
{{- end }}
{{- if not $u.username }}
{{- fail "sidecar.iam.enabled needs externalRedis.username: the IAM-enabled ElastiCache user" }}
{{- end }}
- name: REDIS_IAM_AUTH
  value: "true"
{{- with .cacheName }}
- name: REDIS_IAM_CACHE_NAME
  value: {{ . | quote }}
{{- end }}
{{- if ne (toString .serverless) "auto" }}
- name: REDIS_IAM_SERVERLESS
  value: {{ .serverless | quote }}
{{- end }}
{{- with .region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
- name: REDIS_SIDECAR_MIN_DRAIN
  value: {{ $s.drain.min | quote }}
- name: REDIS_SIDECAR_MAX_DRAIN
  value: {{ $s.drain.max | quote }}
- name: REDIS_SIDECAR_LOG_LEVEL
  value: {{ $s.log.level | quote }}
- name: REDIS_SIDECAR_LOG_FORMAT
  value: {{ $s.log.format | quote }}
{{- with $s.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "redis-sidecar.volumeMounts" -}}
{{- if include "redis-sidecar.secretSources" . }}
- name: redis-sidecar-secrets
  mountPath: {{ .Values.sidecar.secretsDir }}
  readOnly: true
{{- end }}
{{- if .Values.sidecar.socket.enabled }}
- name: redis-sidecar-socket
  mountPath: {{ .Values.sidecar.socket.dir }}
{{- end }}
{{- end }}

{{- define "redis-sidecar.volumes" -}}
{{- with include "redis-sidecar.secretSources" . | trim }}
- name: redis-sidecar-secrets
  projected:
    sources:
      {{- . | nindent 6 }}
{{- end }}
{{- if .Values.sidecar.socket.enabled }}
- name: redis-sidecar-socket
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end }}
{{- end }}

{{- define "redis-sidecar.appVolumeMounts" -}}
{{- if .Values.sidecar.socket.enabled }}
- name: redis-sidecar-socket
  mountPath: {{ .Values.sidecar.socket.dir }}
{{- end }}
{{- end }}

{{- define "redis-sidecar.probe" -}}
httpGet:
  path: {{ .path }}
  port: sidecar-admin
periodSeconds: {{ .p.periodSeconds }}
timeoutSeconds: {{ .p.timeoutSeconds }}
failureThreshold: {{ .p.failureThreshold }}
{{- end }}

{{/* The sidecar container, one list item. The native and regular variants differ only here. */}}
{{- define "redis-sidecar.container" -}}
{{- $s := .Values.sidecar }}
{{- if and $s.native (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "sidecar.native=true needs Kubernetes >= 1.29 (native sidecars); this cluster is %s: set sidecar.native=false" .Capabilities.KubeVersion.Version) }}
{{- end -}}
- name: {{ $s.name }}
  image: {{ include "redis-sidecar.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: [run]
  {{- if $s.native }}
  restartPolicy: Always
  {{- else }}
  {{- $sleep := semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version }}
  {{- if or $sleep $s.holdApplicationUntilStarted }}
  lifecycle:
    {{- if $s.holdApplicationUntilStarted }}
    postStart:
      exec:
        command: [redis-sidecar, wait, --timeout, {{ printf "%ds" (mul $s.probes.startup.periodSeconds $s.probes.startup.failureThreshold) | quote }}]
    {{- end }}
    {{- if $sleep }}
    preStop:
      sleep:
        seconds: {{ $s.drain.preStopSleepSeconds }}
    {{- end }}
  {{- end }}
  {{- end }}
  ports:
    - name: sidecar-admin
      containerPort: {{ $s.httpPort }}
      protocol: TCP
  env:
    {{- include "redis-sidecar.env" . | nindent 4 }}
  {{- with include "redis-sidecar.volumeMounts" . | trim }}
  volumeMounts:
    {{- . | nindent 4 }}
  {{- end }}
  startupProbe:
    {{- include "redis-sidecar.probe" (dict "path" "/startupz" "p" $s.probes.startup) | nindent 4 }}
  readinessProbe:
    {{- include "redis-sidecar.probe" (dict "path" "/readyz" "p" $s.probes.readiness) | nindent 4 }}
  livenessProbe:
    {{- include "redis-sidecar.probe" (dict "path" "/livez" "p" $s.probes.liveness) | nindent 4 }}
  resources:
    {{- toYaml $s.resources | nindent 4 }}
  securityContext:
    {{- toYaml $s.securityContext | nindent 4 }}
{{- end }}

{{- define "redis-sidecar.initContainers" -}}
{{- if .Values.sidecar.native }}
{{- include "redis-sidecar.container" . }}
{{- end }}
{{- end }}

{{- define "redis-sidecar.containers" -}}
{{- if not .Values.sidecar.native }}
{{- include "redis-sidecar.container" . }}
{{- end }}
{{- end }}

{{/* Rolls the pod when the rendered Secret or the secret wiring changes. */}}
{{- define "redis-sidecar.podAnnotations" -}}
checksum/redis-sidecar-secret: {{ printf "%s\n%s" (include "redis-sidecar.secret" .) (include "redis-sidecar.secretSources" .) | sha256sum }}
{{- end }}
