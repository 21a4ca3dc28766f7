{{- define "tmk-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tmk-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tmk-operator.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tmk-operator.serviceAccount" -}}
{{- default (include "tmk-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* What the operator may do in a namespace it manages: exactly the calls in operator/tmk_operator/kube.py and
     kopf's own (watching, finalizers, events). tests/chart/test_rbac.py compares the two. */}}
{{- define "tmk-operator.namespacedRules" -}}
- apiGroups: [tmk.io]
  resources: [tmkinstalls]
  verbs: [get, list, watch, patch]
- apiGroups: [tmk.io]
  resources: [tmksessions]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [tmk.io]
  resources: [tmkinstalls/status, tmksessions/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, patch, update]
- apiGroups: [""]
  resources: [secrets, services, serviceaccounts, persistentvolumeclaims]
  verbs: [get, create, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/* Cluster-wide in every mode: the media nodes' addresses, and what kopf reads to find its resources. */}}
{{- define "tmk-operator.clusterRules" -}}
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list]
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end -}}
