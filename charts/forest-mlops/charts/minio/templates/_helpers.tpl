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

{{/* The Secret of an object-store user (minio.users): R-minio-<name>. Call with (dict "ctx" $ "name" "mlflow"). */}}
{{- define "minio.userSecret" -}}{{ printf "%s-%s" (include "forest-mlops.fullname" .ctx) .name }}{{- end }}

{{/*
The IAM policy of one object-store user (an item of minio.users): list its bucket, read, write and
delete its objects, nothing else (no other bucket, no bucket creation or deletion, no admin).
MinIO and the S3 stand-in (moto) both read AWS's policy language.
*/}}
{{- define "minio.userPolicy" -}}
{{- $bucket := printf "arn:aws:s3:::%s" .bucket -}}
{{- $list := dict "Effect" "Allow" "Action" (list "s3:ListBucket" "s3:GetBucketLocation" "s3:ListBucketMultipartUploads") "Resource" (list $bucket) -}}
{{- $objects := dict "Effect" "Allow" "Action" (list "s3:GetObject" "s3:PutObject" "s3:DeleteObject" "s3:AbortMultipartUpload" "s3:ListMultipartUploadParts") "Resource" (list (printf "%s/*" $bucket)) -}}
{{- dict "Version" "2012-10-17" "Statement" (list $list $objects) | toPrettyJson -}}
{{- end }}
