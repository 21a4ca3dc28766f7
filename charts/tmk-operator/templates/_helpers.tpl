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
     kopf's own (watching, finalizers, events). tests/chart/test_chart.py compares the two. */}}
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
  resources: [secrets]
  verbs: [get, create, patch]
{{- /* The install's children: listed by install, so that those no longer rendered are deleted; configmaps are
       also the session id counter, patched compare-and-swap. */}}
- apiGroups: [""]
  resources: [configmaps, services, serviceaccounts, persistentvolumeclaims]
  verbs: [get, list, create, patch, delete]
{{- /* The Jibri units: watched, so that the pool answers a unit's report at once. */}}
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, list, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, create, patch, delete]
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

{{/* "true" when this release must create the CRDs and a TmkInstall on a cluster that has no TmkInstall CRD yet
     (a fresh cluster). Helm maps every object of a release to its API before it creates any, and a kind whose CRD
     is not served yet fails ("no matches for kind TmkInstall"). Then, and only then, the CRDs go as pre-install
     hooks and the TmkInstall as a post-install hook: Helm maps and creates a hook only when its turn comes. They
     carry the release's ownership metadata, so the next upgrade (the CRD is there by then) adopts them as
     ordinary objects of the release. `helm template` sees no cluster, so it renders the hooks. A rollback to
     that first revision keeps both (resource policy); rolling forward from it needs `helm upgrade`, as `helm
     rollback` fails on objects it finds in no manifest ("original object ... not found"). */}}
{{- define "tmk-operator.freshInstall" -}}
{{- if and .Release.IsInstall .Values.install.enabled .Values.crds.install
      (not (lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" "tmkinstalls.tmk.io")) -}}
true
{{- end -}}
{{- end -}}

{{/* The ownership metadata Helm gives the objects of a release, for a hook that a later upgrade adopts. */}}
{{- define "tmk-operator.ownership" -}}
meta.helm.sh/release-name: {{ .Release.Name }}
meta.helm.sh/release-namespace: {{ .Release.Namespace }}
{{- end -}}
