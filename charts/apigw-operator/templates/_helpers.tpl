{{/* Chart name, at most 63 characters. */}}
{{- define "apigw-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, with the chart's appended unless it already contains it. */}}
{{- define "apigw-operator.fullname" -}}
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

{{- define "apigw-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "apigw-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apigw-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "apigw-operator.labels" -}}
helm.sh/chart: {{ include "apigw-operator.chart" . }}
{{ include "apigw-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: apigw-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "apigw-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "apigw-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "apigw-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* "true" when the operator runs with --leader-elect. */}}
{{- define "apigw-operator.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/*
The rules of the operator's (Cluster)Role: exactly the API calls it makes on the watched
objects. One rule per purpose, so that each can be audited (and the chart's tests remove each in
turn and watch the operator fail).
*/}}
{{- define "apigw-operator.rules" -}}
# Watch ApiGatewayIntegrations and ApiGatewayStages (the controllers' list+watch; the start-up
# CRD checks list; get re-reads an object whose status write met a newer version, to check it
# is the same object).
- apiGroups: ["apigw.dev"]
  resources: ["apigatewayintegrations", "apigatewaystages"]
  verbs: ["get", "list", "watch"]
# Add and remove the apigw.dev/cleanup finalizer (a merge patch of metadata.finalizers).
- apiGroups: ["apigw.dev"]
  resources: ["apigatewayintegrations", "apigatewaystages"]
  verbs: ["patch"]
# Write status with server-side apply (field manager apigw-operator).
- apiGroups: ["apigw.dev"]
  resources: ["apigatewayintegrations/status", "apigatewaystages/status"]
  verbs: ["patch"]
# Events for AWS writes and new failure reasons (created; a repeated one is patched).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
The rules on cluster-scoped objects (issue #14, tenancy): in the ClusterRole after the rules
above, or, with watchNamespace, in a ClusterRole of their own (a Role cannot grant them). The
operator never writes an access's spec (the platform team does): no create, update, patch or
delete on apigatewayaccesses itself.
*/}}
{{- define "apigw-operator.accessRules" -}}
# Watch ApiGatewayAccesses: which namespaces each admits, with which identity and allow-lists.
- apiGroups: ["apigw.dev"]
  resources: ["apigatewayaccesses"]
  verbs: ["get", "list", "watch"]
# Write an access's status (Ready, the account, the number of namespaces it admits).
- apiGroups: ["apigw.dev"]
  resources: ["apigatewayaccesses/status"]
  verbs: ["get", "patch", "update"]
# Watch namespaces, read-only: their labels decide which accesses' namespaceSelectors admit them.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}

{{/*
"true" when the chart installs the ValidatingAdmissionPolicy and the operator keeps its
ConfigMap (--admission-configmap): access mode refuse (with operator-identity nothing is refused,
so there is nothing to tell early), admissionPolicy.enabled, and Kubernetes 1.30 or later
(admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy; the chart supports older versions,
where the reconcile's check alone refuses).
*/}}
{{- define "apigw-operator.admissionPolicy" -}}
{{- if and (eq .Values.accessMode "refuse") .Values.admissionPolicy.enabled (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) }}true{{ end }}
{{- end }}

{{/* The ConfigMap the operator keeps for the policy: one key per admitted namespace. */}}
{{- define "apigw-operator.admissionConfigMap" -}}
apigw-admission
{{- end }}
