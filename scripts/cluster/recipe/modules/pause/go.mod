// Our own pause program: the process that holds each pod's namespaces open.
module forest-mlops.local/cluster/pause

go 1.24
