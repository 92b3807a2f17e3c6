{{/*
Helpers shared by the umbrella chart and its subcharts. Helm puts every chart's named templates
in one namespace, so the subcharts in charts/ call these with their own context; the names are
prefixed to stay clear of the Airflow subchart's.
*/}}

{{/* Objects of a component are named <release>-<chart name>, e.g. fm-mysql (see ARCHITECTURE.md). */}}
{{- define "forest-mlops.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* Names other components are reached by: computed from the release name, no values plumbing. */}}
{{- define "forest-mlops.mysqlName" -}}{{ printf "%s-mysql" .Release.Name }}{{- end }}
{{- define "forest-mlops.minioName" -}}{{ printf "%s-minio" .Release.Name }}{{- end }}
{{- define "forest-mlops.mlflowName" -}}{{ printf "%s-mlflow" .Release.Name }}{{- end }}
{{/* MLflow's logins (admin, train, inference): keys <user>-password. */}}
{{- define "forest-mlops.mlflowAuthName" -}}{{ printf "%s-mlflow-auth" .Release.Name }}{{- end }}
{{- define "forest-mlops.apiDataName" -}}{{ printf "%s-api-data" .Release.Name }}{{- end }}
{{- define "forest-mlops.inferenceName" -}}{{ printf "%s-inference" .Release.Name }}{{- end }}
{{/* Prometheus' exporters (subchart prometheus); Airflow's subchart computes the first itself. */}}
{{- define "forest-mlops.statsdExporterName" -}}{{ printf "%s-statsd-exporter" .Release.Name }}{{- end }}
{{- define "forest-mlops.kubeStateMetricsName" -}}{{ printf "%s-kube-state-metrics" .Release.Name }}{{- end }}
{{- define "forest-mlops.persesName" -}}{{ printf "%s-perses" .Release.Name }}{{- end }}

{{/* A label value from an image tag: at most 63 characters of [A-Za-z0-9._-]. */}}
{{- define "forest-mlops.labelValue" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" (toString .) "_" | trunc 63 | trimSuffix "-" | trimSuffix "_" | trimSuffix "." -}}
{{- end }}

{{/*
Selector labels. Call with (dict "ctx" $ "component" "database"); the component is part of the
selector so that a component's Service never selects another pod of the same subchart (a Job).
*/}}
{{- define "forest-mlops.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All app.kubernetes.io labels. Call with (dict "ctx" $ "component" "database"). */}}
{{- define "forest-mlops.labels" -}}
{{ include "forest-mlops.selectorLabels" . }}
app.kubernetes.io/part-of: forest-mlops
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ include "forest-mlops.labelValue" (.version | default .ctx.Values.image.tag) | quote }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end }}

{{/* An image reference; the schema already refuses `latest` and empty tags. */}}
{{- define "forest-mlops.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end }}

{{/*
A generated secret value, base64-encoded: the value already in the cluster when the Secret
exists (so upgrades keep it); else, when global.generatedSecretsSeed is set, one derived from
that seed, the release, the namespace, the Secret and the key (so `helm template` and
`skaffold render` give the same manifest every time, for GitOps diffs); else a new random one.
No value is ever a default: without a seed or a cluster every render draws new ones. Call with
(dict "ctx" $ "secret" "fm-mysql" "key" "root-password" "length" 32).
*/}}
{{- define "forest-mlops.generatedSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- $seed := include "forest-mlops.secretsSeed" .ctx -}}
{{- if and $existing (index ($existing.data | default dict) .key) -}}
{{- index $existing.data .key -}}
{{- else if $seed -}}
{{- include "forest-mlops.derivedSecret" . | b64enc -}}
{{- else -}}
{{- randAlphaNum (int .length) | b64enc -}}
{{- end -}}
{{- end }}

{{/* global.generatedSecretsSeed, or empty; at least 32 characters (check-values.yaml). */}}
{{- define "forest-mlops.secretsSeed" -}}
{{- dig "generatedSecretsSeed" "" (.Values.global | default dict) -}}
{{- end }}

{{/*
A value derived from the seed (hex of two chained SHA-256 digests, 4 bits a character, up to
128 characters): distinct for every release, namespace, Secret and key. Same arguments as
forest-mlops.generatedSecretValue.
*/}}
{{- define "forest-mlops.derivedSecret" -}}
{{- $seed := include "forest-mlops.secretsSeed" .ctx -}}
{{- $first := sha256sum (printf "forest-mlops\n%s\n%s\n%s\n%s\n%s" $seed .ctx.Release.Name .ctx.Release.Namespace .secret .key) -}}
{{- trunc (int .length) (printf "%s%s" $first (sha256sum (printf "%s\n%s" $first $seed))) -}}
{{- end }}

{{/*
The /tmp emptyDir of a pod whose containers have a read-only root filesystem; call with its size
limit, e.g. (include "forest-mlops.tmpVolume" "256Mi"). On disk: model files pass through it.
*/}}
{{- define "forest-mlops.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ . }}
{{- end }}

{{/* Labels of the umbrella chart's own objects. Call with (dict "ctx" $ "component" "network-policy"). */}}
{{- define "forest-mlops.umbrellaLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: forest-mlops
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end }}

{{/*
File sync for `skaffold dev -p dev` (values <service>.devSync): the service's own package is
copied into a writable emptyDir at start, that copy comes first on PYTHONPATH, skaffold syncs
edited files into it, and watchfiles restarts the service when a .py file there changes. The
root filesystem stays read-only. Call with (dict "values" .Values "package" "inference_api").
*/}}
{{- define "forest-mlops.devSyncInitContainer" -}}
- name: dev-src
  image: {{ include "forest-mlops.image" .values.image }}
  imagePullPolicy: {{ .values.image.pullPolicy }}
  command:
    - python
    - -c
    # find_spec locates the installed package without importing (running) it.
    - import importlib.util, shutil; shutil.copytree(importlib.util.find_spec({{ .package | squote }}).submodule_search_locations[0], {{ printf "%s/%s" .values.devSync.path .package | squote }}, dirs_exist_ok=True)
  resources:
    {{- toYaml .values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .values.securityContext | nindent 4 }}
  volumeMounts:
    - name: dev-src
      mountPath: {{ .values.devSync.path }}
{{- end }}

{{/* The service command, under watchfiles when devSync is on. Call with (dict "values" .Values "command" "forest-mlops inference"). */}}
{{- define "forest-mlops.devSyncCommand" -}}
{{- if .values.devSync.enabled -}}
[watchfiles, --filter, python, {{ .command | quote }}, {{ .values.devSync.path }}]
{{- else -}}
{{ splitList " " .command | toJson }}
{{- end -}}
{{- end }}

{{- define "forest-mlops.devSyncEnv" -}}
- name: PYTHONPATH
  value: {{ .devSync.path }}
{{- end }}

{{- define "forest-mlops.devSyncVolumeMount" -}}
- name: dev-src
  mountPath: {{ .devSync.path }}
{{- end }}

{{- define "forest-mlops.devSyncVolume" -}}
- name: dev-src
  emptyDir:
    sizeLimit: 64Mi
{{- end }}
