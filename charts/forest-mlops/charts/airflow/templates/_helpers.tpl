{{/*
Named templates of the Airflow subchart, prefixed `airflow.` (Helm shares one namespace of named
templates between the umbrella chart and every subchart).
*/}}

{{/* R-airflow: the prefix of every object of this chart (docs/ARCHITECTURE.md). */}}
{{- define "airflow.fullname" -}}
{{- printf "%s-airflow" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* R-airflow-<component>. Call with (dict "ctx" $ "component" "scheduler"). */}}
{{- define "airflow.componentName" -}}
{{- printf "%s-%s" (include "airflow.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* Names of the platform's other objects, computed from the release name. */}}
{{- /* The metadata DB is the platform's PostgreSQL (R-postgresql); train_data is on MySQL (R-mysql). */}}
{{- define "airflow.metadataDbHost" -}}{{ .Values.database.host | default (printf "%s-postgresql" .Release.Name) }}{{- end }}
{{- define "airflow.trainDbHost" -}}{{ .Values.trainDatabase.host | default (printf "%s-mysql" .Release.Name) }}{{- end }}
{{- define "airflow.dbSecret" -}}{{ .Values.database.existingSecret | default (printf "%s-postgresql" .Release.Name) }}{{- end }}
{{- define "airflow.trainDbSecret" -}}{{ .Values.trainDatabase.existingSecret | default (printf "%s-mysql" .Release.Name) }}{{- end }}
{{- define "airflow.s3Secret" -}}{{ .Values.logs.remote.existingSecret | default (printf "%s-minio-airflow-logs" .Release.Name) }}{{- end }}
{{- define "airflow.s3Endpoint" -}}{{ .Values.logs.remote.s3EndpointUrl | default (printf "http://%s-minio:9000" .Release.Name) }}{{- end }}
{{/* The umbrella's MLflow logins (forest-mlops.mlflowAuthName); task pods use the train user's. */}}
{{- define "airflow.mlflowAuthSecret" -}}{{ printf "%s-mlflow-auth" .Release.Name }}{{- end }}
{{- define "airflow.statsdHost" -}}{{ .Values.metrics.statsd.host | default (printf "%s-statsd-exporter" .Release.Name) }}{{- end }}
{{- define "airflow.platformConfigMap" -}}{{ printf "%s-platform" .Release.Name }}{{- end }}
{{- define "airflow.secretName" -}}{{ .Values.secrets.existingSecret | default (include "airflow.fullname" .) }}{{- end }}
{{- define "airflow.apiServerUrl" -}}
{{- printf "http://%s:%v" (include "airflow.componentName" (dict "ctx" . "component" "api-server")) .Values.apiServer.service.port -}}
{{- end }}

{{/* Selector labels. Call with (dict "ctx" $ "component" "scheduler"). */}}
{{- define "airflow.selectorLabels" -}}
app.kubernetes.io/name: airflow
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All app.kubernetes.io labels. Call with (dict "ctx" $ "component" "scheduler"). */}}
{{- define "airflow.labels" -}}
{{ include "airflow.selectorLabels" . }}
app.kubernetes.io/part-of: forest-mlops
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ regexReplaceAll "[^A-Za-z0-9._-]" (toString .ctx.Values.image.tag) "_" | trunc 63 | quote }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end }}

{{/*
Labels of every Airflow pod: selector labels plus the NetworkPolicy client labels. Task pods
(component worker) add workers.networkClientLabels: only they are MySQL (train_data) clients.
*/}}
{{- define "airflow.podLabels" -}}
{{ include "airflow.selectorLabels" . }}
app.kubernetes.io/part-of: forest-mlops
{{- $clients := deepCopy (.ctx.Values.networkClientLabels | default dict) }}
{{- if eq .component "worker" }}
{{- $clients = mustMergeOverwrite $clients (deepCopy (.ctx.Values.workers.networkClientLabels | default dict)) }}
{{- end }}
{{- with $clients }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The image of every Airflow container and task pod; the schema refuses `latest`. */}}
{{- define "airflow.image" -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end }}

{{/*
airflow.cfg: the chart's settings with .Values.config merged over them. Only non-secret
settings live here; secrets come from env (secretKeyRef), so the ConfigMap can be read freely.
*/}}
{{- define "airflow.config" -}}
{{- $remote := .Values.logs.remote -}}
{{- $core := dict
  "executor" "KubernetesExecutor"
  "dags_folder" "/opt/airflow/dags"
  "load_examples" "False"
  "auth_manager" "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
  "simple_auth_manager_users" (printf "%s:admin" .Values.auth.adminUser)
  "simple_auth_manager_passwords_file" "/opt/airflow/auth/passwords.json"
-}}
{{- $api := dict "host" "0.0.0.0" "port" (toString .Values.apiServer.service.port) "workers" (toString .Values.apiServer.workers) "expose_config" "False" -}}
{{- $database := dict "check_migrations" "True" "sql_alchemy_pool_pre_ping" "True" "sql_alchemy_pool_recycle" "1800" -}}
{{- $scheduler := dict "enable_health_check" "True" "scheduler_health_check_server_host" "0.0.0.0" "scheduler_health_check_server_port" "8974" -}}
{{- $dagProcessor := dict "refresh_interval" (toString .Values.dagProcessor.refreshInterval) "dag_bundle_storage_path" "/tmp/airflow/dag_bundles" -}}
{{- $logging := dict "base_log_folder" "/opt/airflow/logs" "remote_logging" (ternary "True" "False" $remote.enabled) -}}
{{- if $remote.enabled }}
{{- $_ := set $logging "remote_base_log_folder" (printf "s3://%s/%s" $remote.bucket $remote.prefix | trimSuffix "/") -}}
{{- $_ := set $logging "remote_log_conn_id" $remote.connId -}}
{{- $_ := set $logging "delete_local_logs" "True" -}}
{{- end }}
{{- $k8s := dict
  "namespace" .Release.Namespace
  "in_cluster" "True"
  "delete_worker_pods" (ternary "True" "False" .Values.workers.deletePods)
  "delete_worker_pods_on_failure" (ternary "True" "False" .Values.workers.deleteFailedPods)
-}}
{{- /* StatsD: in airflow.cfg, which the task pods mount too (ti.finish comes from the task's process). */}}
{{- $statsd := .Values.metrics.statsd -}}
{{- $metrics := dict "statsd_on" (ternary "True" "False" $statsd.enabled) -}}
{{- if $statsd.enabled }}
{{- $_ := set $metrics "statsd_host" (include "airflow.statsdHost" .) -}}
{{- $_ := set $metrics "statsd_port" (toString $statsd.port) -}}
{{- /* The mapping (files/prometheus/statsd-mapping.yaml) matches names under this prefix. */}}
{{- $_ := set $metrics "statsd_prefix" "airflow" -}}
{{- end }}
{{- $cfg := dict "core" $core "api" $api "database" $database "scheduler" $scheduler "dag_processor" $dagProcessor "logging" $logging "kubernetes_executor" $k8s "metrics" $metrics -}}
{{- $merged := mustMergeOverwrite $cfg (deepCopy .Values.config) -}}
{{- range $section, $options := $merged }}
[{{ $section }}]
{{- range $key, $value := $options }}
{{ $key }} = {{ $value }}
{{- end }}
{{ end }}
{{- end }}

{{/* Env of the S3 remote-logging connection: the keys from the Secret, the connection as JSON. */}}
{{- define "airflow.logsEnv" -}}
{{- $remote := .Values.logs.remote -}}
{{- if $remote.enabled }}
- name: LOGS_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.s3Secret" . }}
      key: {{ $remote.accessKeyIdKey }}
- name: LOGS_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.s3Secret" . }}
      key: {{ $remote.secretAccessKeyKey }}
{{- $extra := dict "endpoint_url" (include "airflow.s3Endpoint" .) "region_name" $remote.region "config_kwargs" (dict "s3" (dict "addressing_style" "path")) }}
- name: AIRFLOW_CONN_{{ upper $remote.connId }}
  value: {{ dict "conn_type" "aws" "login" "$(LOGS_S3_ACCESS_KEY_ID)" "password" "$(LOGS_S3_SECRET_ACCESS_KEY)" "extra" $extra | toJson | quote }}
{{- end }}
{{- end }}

{{/*
Env of the control plane (api-server, scheduler, dag-processor, triggerer, their init
containers): metadata DB, fernet key, API and JWT secrets, the execution API URL, the logs
connection. The official entrypoint's own DB wait is off: the init containers wait explicitly.
*/}}
{{- define "airflow.controlPlaneEnv" -}}
- name: CONNECTION_CHECK_MAX_COUNT
  value: "0"
- name: AIRFLOW_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.dbSecret" . }}
      key: {{ .Values.database.passwordKey }}
- name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  value: {{ printf "%s://%s:$(AIRFLOW_DB_PASSWORD)@%s:%v/%s" .Values.database.driver .Values.database.user (include "airflow.metadataDbHost" .) .Values.database.port .Values.database.name | quote }}
- name: AIRFLOW__CORE__FERNET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.secretName" . }}
      key: fernet-key
- name: AIRFLOW__API__SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.secretName" . }}
      key: api-secret-key
- name: AIRFLOW__API_AUTH__JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.secretName" . }}
      key: jwt-secret
- name: AIRFLOW__CORE__EXECUTION_API_SERVER_URL
  value: {{ printf "%s/execution/" (include "airflow.apiServerUrl" .) | quote }}
{{- include "airflow.logsEnv" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Env of task pods: what the DAGs read at run time (docs/ARCHITECTURE.md), the execution API URL
and the logs connection. No metadata DB, fernet key or JWT secret: Airflow 3 task pods talk to
the execution API only.
*/}}
{{- define "airflow.taskEnv" -}}
- name: CONNECTION_CHECK_MAX_COUNT
  value: "0"
- name: AIRFLOW__CORE__EXECUTION_API_SERVER_URL
  value: {{ printf "%s/execution/" (include "airflow.apiServerUrl" .) | quote }}
- name: TRAIN_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.trainDbSecret" . }}
      key: {{ .Values.trainDatabase.passwordKey }}
- name: FOREST_DATABASE_URL
  value: {{ printf "mysql+pymysql://%s:$(TRAIN_DB_PASSWORD)@%s:%v/%s" .Values.trainDatabase.user (include "airflow.trainDbHost" .) .Values.trainDatabase.port .Values.trainDatabase.name | quote }}
# MLflow asks for a login (basic auth): training logs runs, registers versions and moves the
# champion alias as the train user (forest_mlops.mlflow_auth). MLflow's client reads these.
- name: MLFLOW_TRACKING_USERNAME
  value: train
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.mlflowAuthSecret" . }}
      key: train-password
# matplotlib (MLflow's plots) writes its cache under $MPLCONFIGDIR, else under $HOME, which the
# read-only root filesystem refuses: point it at the /tmp emptyDir (as the retraining Job does).
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
{{- include "airflow.logsEnv" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .Values.workers.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The R-platform ConfigMap (MLFLOW_TRACKING_URI, FOREST_API_URL, ...) as env. */}}
{{- define "airflow.platformEnvFrom" -}}
- configMapRef:
    name: {{ include "airflow.platformConfigMap" . }}
{{- end }}

{{/* Volumes every Airflow pod mounts: airflow.cfg, the local log folder and /tmp. */}}
{{- define "airflow.volumes" -}}
- name: config
  configMap:
    name: {{ include "airflow.componentName" (dict "ctx" . "component" "config") }}
- name: logs
  emptyDir:
    sizeLimit: 1Gi
- name: tmp
  emptyDir:
    sizeLimit: 512Mi
{{- end }}

{{- define "airflow.volumeMounts" -}}
- name: config
  mountPath: /opt/airflow/airflow.cfg
  subPath: airflow.cfg
  readOnly: true
- name: logs
  mountPath: /opt/airflow/logs
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Init container that waits for the metadata database, then runs a final airflow command.
Call with (dict "ctx" $ "name" "migrate-db" "then" "airflow db migrate").
`airflow db check` does not print the URL; the loop prints only the attempt count.
*/}}
{{- define "airflow.dbInitContainer" -}}
{{- $ctx := .ctx -}}
- name: {{ .name }}
  image: {{ include "airflow.image" $ctx }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  args:
    - bash
    - -c
    - |
      deadline=$((SECONDS + {{ $ctx.Values.migration.waitTimeoutSeconds }}))
      attempt=0
      until airflow db check >/dev/null 2>&1; do
        attempt=$((attempt + 1))
        if (( SECONDS >= deadline )); then
          echo "metadata database not reachable after {{ $ctx.Values.migration.waitTimeoutSeconds }} s" >&2
          exec airflow db check
        fi
        echo "waiting for the metadata database (attempt ${attempt})"
        sleep 5
      done
      exec {{ .then }}
  env:
    {{- include "airflow.controlPlaneEnv" $ctx | nindent 4 }}
  volumeMounts:
    {{- include "airflow.volumeMounts" $ctx | nindent 4 }}
  resources:
    {{- toYaml $ctx.Values.initResources | nindent 4 }}
  securityContext:
    {{- toYaml $ctx.Values.securityContext | nindent 4 }}
{{- end }}

{{/* Pod-level settings shared by the Deployments. Call with (dict "ctx" $ "component" "x"). */}}
{{- define "airflow.podSpecCommon" -}}
serviceAccountName: {{ include "airflow.componentName" . }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Checksums that roll the pods when the config or the generated Secret change. */}}
{{- define "airflow.configChecksum" -}}
checksum/airflow-config: {{ include "airflow.config" . | sha256sum }}
{{- end }}

{{/*
A generated value derived from global.generatedSecretsSeed (empty without a seed): the same
derivation as the umbrella chart's forest-mlops.derivedSecret, kept here so that this subchart
also renders on its own. Call with (dict "ctx" $ "secret" NAME "key" KEY "length" N).
*/}}
{{- define "airflow.derivedSecret" -}}
{{- $seed := dig "generatedSecretsSeed" "" (.ctx.Values.global | default dict) -}}
{{- if $seed -}}
{{- $first := sha256sum (printf "forest-mlops\n%s\n%s\n%s\n%s\n%s" $seed .ctx.Release.Name .ctx.Release.Namespace .secret .key) -}}
{{- trunc (int .length) (printf "%s%s" $first (sha256sum (printf "%s\n%s" $first $seed))) -}}
{{- end -}}
{{- end }}
