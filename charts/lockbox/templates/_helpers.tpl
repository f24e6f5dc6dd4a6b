{{/*
Chart name, truncated to 63 characters (label values).
*/}}
{{- define "lockbox.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the objects: fullnameOverride, or the release name if it
contains the chart name, or "<release>-<chart name>".
*/}}
{{- define "lockbox.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "lockbox.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lockbox.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the lockbox pod.
*/}}
{{- define "lockbox.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lockbox.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount lockbox runs as.
*/}}
{{- define "lockbox.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lockbox.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest, or repository:tag (tag defaults to
the chart's appVersion).
*/}}
{{- define "lockbox.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Paths inside the container. The image (Dockerfile) puts the binary and the
example plugins' digests at these paths.
*/}}
{{- define "lockbox.binary" -}}/usr/local/bin/lockbox{{- end }}
{{- define "lockbox.dataVolume" -}}/var/lib/lockbox{{- end }}
{{- /* A directory inside the volume, not its root: lockbox creates it with
mode 0700, which it could not do to a volume root it does not own. */}}
{{- define "lockbox.dataDir" -}}/var/lib/lockbox/data{{- end }}
{{- define "lockbox.tlsDir" -}}/etc/lockbox/tls{{- end }}
{{- define "lockbox.digestDir" -}}/usr/lib/lockbox/sha256{{- end }}
{{- define "lockbox.sha256sums" -}}/usr/lib/lockbox/SHA256SUMS{{- end }}

{{/*
Base URL of the API from inside the cluster.
*/}}
{{- define "lockbox.apiURL" -}}
{{- printf "%s://%s.%s.svc:%d" (ternary "https" "http" .Values.tls.enabled) (include "lockbox.fullname" .) .Release.Namespace (int .Values.api.port) }}
{{- end }}

{{/*
Security context of every container: the restricted Pod Security Standard
(non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp)
plus a read-only root filesystem.
*/}}
{{- define "lockbox.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Security context of every pod.
*/}}
{{- define "lockbox.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
One container of the `helm test` pod: (list $ args) runs `lockbox ARGS`
against the API with the root token.
*/}}
{{- define "lockbox.testContainer" -}}
{{- $ := index . 0 -}}
image: {{ include "lockbox.image" $ }}
imagePullPolicy: {{ $.Values.image.pullPolicy }}
command: [{{ include "lockbox.binary" $ | quote }}]
args:
  {{- toYaml (index . 1) | nindent 2 }}
env:
  - name: LOCKBOX_ADDR
    value: {{ include "lockbox.apiURL" $ }}
  {{- if $.Values.tls.enabled }}
  - name: LOCKBOX_CACERT
    value: /etc/lockbox/ca/ca.crt
  {{- end }}
  - name: LOCKBOX_TOKEN
    valueFrom:
      secretKeyRef:
        name: lockbox-root-token
        key: token
resources:
  requests:
    cpu: 10m
    memory: 32Mi
  limits:
    memory: 64Mi
securityContext:
  {{- include "lockbox.containerSecurityContext" $ | nindent 2 }}
{{- if $.Values.tls.enabled }}
volumeMounts:
  - name: ca
    mountPath: /etc/lockbox/ca
    readOnly: true
{{- end }}
{{- end }}
