{{/*
prometheus.yml. Static targets, no Kubernetes service discovery: every target is a Service of
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
