{{/* The backend store URI; the password comes from the environment ($(MLFLOW_DB_PASSWORD)), expanded by Kubernetes. */}}
{{- define "mlflow.backendStoreUri" -}}
{{- $db := .Values.database -}}
{{- printf "mysql+pymysql://%s:$(MLFLOW_DB_PASSWORD)@%s:%d/%s" $db.user ($db.host | default (include "forest-mlops.mysqlName" .)) (int $db.port) $db.name -}}
{{- end }}

{{/* Host headers the server accepts (MLflow 3's DNS-rebinding check): its Service names and localhost for port-forward. */}}
{{- define "mlflow.allowedHosts" -}}
{{- $svc := include "forest-mlops.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $svc (printf "%s:*" $svc) (printf "%s.%s" $svc $ns) (printf "%s.%s:*" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc:*" $svc $ns) (printf "%s.%s.svc.*" $svc $ns) "localhost" "localhost:*" "127.0.0.1" "127.0.0.1:*" -}}
{{- concat $hosts .Values.extraAllowedHosts | join "," -}}
{{- end }}

{{/* The database password and S3 keys of every container of the pod. */}}
{{- define "mlflow.secretEnv" -}}
- name: MLFLOW_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | default (include "forest-mlops.mysqlName" .) }}
      key: {{ .Values.database.passwordKey }}
{{- end }}
