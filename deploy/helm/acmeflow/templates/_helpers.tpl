{{/* Labels on every object: kustomize's part-of plus Helm's own. */}}
{{- define "acmeflow.labels" -}}
app.kubernetes.io/part-of: acmeflow
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "acmeflow.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "acmeflow.temporalAddress" -}}
{{- if .Values.devTemporal.enabled -}}temporal-dev:7233{{- else -}}{{ .Values.temporal.address }}{{- end -}}
{{- end -}}

{{/* Pod securityContext shared by acmeflow's pods. */}}
{{- define "acmeflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "acmeflow.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The probes of the worker and the bridge, on the metrics port. */}}
{{- define "acmeflow.metricsProbes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/* Temporal Secrets, mounted in the worker and the bridge (optional unless switched on). */}}
{{- define "acmeflow.temporalMounts" -}}
- name: tmp
  mountPath: /tmp
- name: temporal-tls
  mountPath: /etc/acmeflow/temporal-tls
  readOnly: true
- name: temporal-api-key
  mountPath: /etc/acmeflow/temporal-api-key
  readOnly: true
{{- end -}}

{{- define "acmeflow.temporalVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.mtls.secretName }}
    optional: {{ not .Values.temporal.mtls.enabled }}
- name: temporal-api-key
  secret:
    secretName: {{ .Values.temporal.apiKey.secretName }}
    optional: {{ not .Values.temporal.apiKey.enabled }}
{{- end -}}

{{/* A ServiceAccount subject in the release's namespace. */}}
{{- define "acmeflow.subject" -}}
- kind: ServiceAccount
  name: {{ . }}
{{- end -}}
