{{/*
prometheus.yml. Static targets, no Kubernetes service discovery (kube-state-metrics, its own pod,
is what reads the Kubernetes API): every target is a Service of
this release whose name is known at render time, so Prometheus needs no ServiceAccount token and
no RBAC. Inference may run several replicas (its HPA), and a Service address would send each
scrape to any one of them, mixing their counters into nonsense rates: it is resolved through its
headless Service instead (dns_sd_configs, one target per ready pod), which needs DNS only.
*/}}
{{- define "prometheus.config" -}}
{{- $release := .Release.Name }}
{{- $jobs := list }}
{{- /* Its own health (rule evaluation failures, scrape durations), over the loopback. */}}
{{- $jobs = append $jobs (dict "job_name" "prometheus" "static_configs" (list (dict "targets" (list "localhost:9090")))) }}
{{- if .Values.scrape.inference }}
{{- $jobs = append $jobs (dict "job_name" "inference" "dns_sd_configs" (list (dict "names" (list (printf "%s-inference-headless" $release)) "type" "A" "port" 8001))) }}
{{- end }}
{{- if .Values.scrape.apiData }}
{{- /* One replica by design (its group state lives in the process): the Service is that pod. */}}
{{- $jobs = append $jobs (dict "job_name" "api-data" "static_configs" (list (dict "targets" (list (printf "%s-api-data:8000" $release))))) }}
{{- end }}
{{- if .Values.scrape.mlflow }}
{{- /* The metrics sidecar of every MLflow replica (its own /metrics wants a login). */}}
{{- $jobs = append $jobs (dict "job_name" "mlflow" "dns_sd_configs" (list (dict "names" (list (printf "%s-mlflow-metrics" $release)) "type" "A" "port" 9102))) }}
{{- end }}
{{- if .Values.statsdExporter.enabled }}
{{- /* Airflow's metrics, as the exporter maps them (one replica: its Service is that pod). */}}
{{- $jobs = append $jobs (dict "job_name" "airflow-statsd" "static_configs" (list (dict "targets" (list (printf "%s:9102" (include "forest-mlops.statsdExporterName" .)))))) }}
{{- end }}
{{- if .Values.kubeStateMetrics.enabled }}
{{- /* The objects' namespace and pod labels come from the series; a static target adds only
job and instance, so nothing of theirs is renamed. */}}
{{- $jobs = append $jobs (dict "job_name" "kube-state-metrics" "static_configs" (list (dict "targets" (list (printf "%s:8080" (include "forest-mlops.kubeStateMetricsName" .)))))) }}
{{- end }}
{{- range .Values.extraScrapeConfigs }}
{{- $jobs = append $jobs . }}
{{- end }}
{{- $rules := list }}
{{- range $path, $_ := .Files.Glob "rules/*.yaml" }}
{{- $rules = append $rules $path }}
{{- end }}
{{- $global := dict "scrape_interval" .Values.scrapeInterval "evaluation_interval" .Values.evaluationInterval }}
{{- toYaml (dict "global" $global "rule_files" $rules "scrape_configs" $jobs) }}
{{- end }}

{{/*
What kube-state-metrics lists and watches (its --resources), by API group, as YAML: the Role
grants list/watch on exactly these. pods: restarts (rules/kubernetes.yaml), phases, requests
and limits, and kube_pod_labels to sum them by component; deployments and statefulsets: replicas
available; jobs and cronjobs: the bucket Job and k8s/'s retraining CronJob. Nothing else of the
namespace (no Secrets, no ConfigMaps).
*/}}
{{- define "prometheus.kubeStateMetricsResources" -}}
"": [pods]
apps: [deployments, statefulsets]
batch: [cronjobs, jobs]
{{- end }}

{{/*
Perses' provisioning files (a dict file name -> YAML), loaded at start and every
provisioning interval: one Project (prometheus.perses.project, default the release name), its
default Datasource "prometheus" (the release's Prometheus Service, read through Perses' proxy, so
the browser needs no route to Prometheus), and one Dashboard per file of
files/prometheus/dashboards, generated here from those same files so that the graph-page links
(forest_mlops.monitoring.dashboards) and Perses show the same queries: title -> display name,
range -> duration, each panel -> a TimeSeriesChart with one Prometheus query per expr, two panels
a row. The panel's unit goes into its description: TimeSeriesChart's units are a fixed list
("seconds", "bytes", ...) that the files' free-text units ("runs", "req/s") do not map onto.
*/}}
{{- define "prometheus.persesProvisioning" -}}
{{- $project := .Values.perses.project | default .Release.Name }}
{{- $files := dict }}
{{- $_ := set $files "project.yaml" (toYaml (dict "kind" "Project" "metadata" (dict "name" $project) "spec" (dict "display" (dict "name" $project)))) }}
{{- $url := printf "http://%s:9090" (include "forest-mlops.fullname" .) }}
{{- $proxy := dict "kind" "HTTPProxy" "spec" (dict "url" $url) }}
{{- $ds := dict "kind" "Datasource" "metadata" (dict "name" "prometheus" "project" $project) "spec" (dict "default" true "plugin" (dict "kind" "PrometheusDatasource" "spec" (dict "proxy" $proxy))) }}
{{- $_ := set $files "datasource-prometheus.yaml" (toYaml $ds) }}
{{- range $path, $_ := .Files.Glob "dashboards/*.yaml" }}
{{- $name := base $path | trimSuffix ".yaml" }}
{{- $board := $.Files.Get $path | fromYaml }}
{{- $panels := dict }}
{{- $items := list }}
{{- range $i, $panel := $board.panels }}
{{- $id := printf "panel%d" $i }}
{{- $queries := list }}
{{- range $panel.exprs }}
{{- $queries = append $queries (dict "kind" "TimeSeriesQuery" "spec" (dict "plugin" (dict "kind" "PrometheusTimeSeriesQuery" "spec" (dict "query" .)))) }}
{{- end }}
{{- $display := dict "name" $panel.title }}
{{- with $panel.unit }}{{ $_ := set $display "description" (printf "unit: %s" .) }}{{ end }}
{{- $_ := set $panels $id (dict "kind" "Panel" "spec" (dict "display" $display "plugin" (dict "kind" "TimeSeriesChart" "spec" dict) "queries" $queries)) }}
{{- $items = append $items (dict "x" (mul (mod $i 2) 12) "y" (mul (div $i 2) 8) "width" 12 "height" 8 "content" (dict "$ref" (printf "#/spec/panels/%s" $id))) }}
{{- end }}
{{- $spec := dict "display" (dict "name" $board.title) "duration" $board.range "panels" $panels "layouts" (list (dict "kind" "Grid" "spec" (dict "items" $items))) }}
{{- $_ := set $files (printf "dashboard-%s.yaml" $name) (toYaml (dict "kind" "Dashboard" "metadata" (dict "name" $name "project" $project) "spec" $spec)) }}
{{- end }}
{{- toYaml $files }}
{{- end }}
