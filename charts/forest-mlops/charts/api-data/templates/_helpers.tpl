{{/* Where the API reads the dataset: baked into the image, or fetched onto the state PVC. */}}
{{- define "api-data.datasetPath" -}}
{{- if .Values.dataset.fetch.enabled -}}
/var/lib/api-data/covertype.csv.gz
{{- else -}}
{{- .Values.dataset.path -}}
{{- end -}}
{{- end }}
