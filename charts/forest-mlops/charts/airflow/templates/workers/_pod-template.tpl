{{- define "airflow.podTemplate" -}}
apiVersion: v1
kind: Pod
metadata:
  name: placeholder-name
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "airflow.podLabels" (dict "ctx" . "component" "worker") | nindent 4 }}
  annotations:
    checkov.io/skip1: CKV_K8S_43=the image is built by skaffold/kind from this repository and referenced by the tag it sets; there is no registry digest to pin
    checkov.io/skip2: CKV_K8S_35=Kubernetes injects the train DB password and the S3 keys as env because the DAG code and Airflow's AIRFLOW_CONN_ mechanism read env; the values come from Secrets, never from the manifest
    checkov.io/skip3: CKV_K8S_8=a task pod runs to completion; a liveness probe has nothing to check (the executor watches the pod phase)
    checkov.io/skip4: CKV_K8S_9=a task pod serves no traffic, so it has no readiness to report
    checkov.io/skip5: CKV_K8S_15=IfNotPresent because the project image is loaded into kind (not pulled from a registry) and skaffold tags every build uniquely, so a cached image is never stale
spec:
  serviceAccountName: {{ include "airflow.componentName" (dict "ctx" . "component" "worker") }}
  # Task pods never call the Kubernetes API.
  automountServiceAccountToken: false
  restartPolicy: Never
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  containers:
    - name: base
      image: {{ include "airflow.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      env:
        {{- include "airflow.taskEnv" . | nindent 8 }}
        # Where the task runs, from the downward API: training records which pod and node each
        # candidate ran on (forest_mlops.training.workflow.placement).
        - name: FOREST_POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: FOREST_NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
      envFrom:
        {{- include "airflow.platformEnvFrom" . | nindent 8 }}
      volumeMounts:
        {{- include "airflow.volumeMounts" . | nindent 8 }}
      resources:
        {{- toYaml .Values.workers.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
  volumes:
    {{- include "airflow.volumes" . | nindent 4 }}
{{- end }}
