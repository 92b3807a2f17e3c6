{{/* Environment of the mc containers: the alias `minio` with its credentials, never on a command line. */}}
{{- define "minio.mcEnv" -}}
{{- $fullname := include "forest-mlops.fullname" . -}}
{{- $secret := .Values.auth.existingSecret | default $fullname -}}
- name: MINIO_ROOT_USER
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: root-user
- name: MINIO_ROOT_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: root-password
- name: MC_HOST_minio
  value: http://$(MINIO_ROOT_USER):$(MINIO_ROOT_PASSWORD)@{{ $fullname }}:9000
{{- end }}
