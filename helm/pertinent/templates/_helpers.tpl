{{/* Chart name. */}}
{{- define "pertinent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, unless overridden. */}}
{{- define "pertinent.fullname" -}}
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

{{/* Chart label value. */}}
{{- define "pertinent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "pertinent.labels" -}}
helm.sh/chart: {{ include "pertinent.chart" . }}
{{ include "pertinent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels. */}}
{{- define "pertinent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pertinent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service account name. */}}
{{- define "pertinent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pertinent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when the remote store (Qdrant) is configured: only then can replicas scale out. */}}
{{- define "pertinent.remote" -}}
{{- if .Values.qdrant.url }}true{{ end }}
{{- end }}

{{/* Replicas: the embedded SQLite store is one file on one volume, so one replica. */}}
{{- define "pertinent.replicas" -}}
{{- if include "pertinent.remote" . }}{{ .Values.replicaCount }}{{ else }}1{{ end }}
{{- end }}

{{/*
The port the kubelet's gRPC probes use: the plaintext health port when the gRPC port is TLS
(kubelet gRPC probes do not speak TLS), else the gRPC port.
*/}}
{{- define "pertinent.probePort" -}}
{{- if .Values.tls.secretName }}{{ .Values.tls.healthPort }}{{ else }}{{ .Values.service.port }}{{ end }}
{{- end }}

{{/* The replicas the PodDisruptionBudget protects: the HPA's minimum when it is on. */}}
{{- define "pertinent.minReplicas" -}}
{{- if and .Values.autoscaling.enabled (include "pertinent.remote" .) }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ include "pertinent.replicas" . }}{{ end }}
{{- end }}
