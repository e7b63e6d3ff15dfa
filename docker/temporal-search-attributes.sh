#!/usr/bin/env bash
# Registers invoiceflow's custom search attributes in a Temporal namespace. Idempotent: attributes that
# already exist with the same type are left alone; one that exists with another type is an error.
# Run by the one-shot `temporal-search-attributes` service of docker-compose.yml (temporalio/admin-tools
# image); keep the list in step with workflows/search_attributes.py.
set -euo pipefail

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
attributes=(
  InvoiceStatus=Keyword
  CustomerId=Keyword
  InvoiceNumber=Keyword
  AmountDue=Double
  DueDate=Datetime
  Currency=Keyword
  ApprovalStep=Keyword
)
tries=60 # x 2 s

# The server reports healthy a little before auto-setup has created the namespace and before the
# frontend's namespace cache knows it; listing the namespace's search attributes works only then.
for attempt in $(seq 1 "$tries"); do
  if temporal operator search-attribute list --namespace "$namespace" --address "$address" >/dev/null 2>&1; then
    break
  fi
  if [ "$attempt" -eq "$tries" ]; then
    echo "namespace '$namespace' not usable at $address; last error:" >&2
    temporal operator search-attribute list --namespace "$namespace" --address "$address" >&2 || true
    exit 1
  fi
  sleep 2
done

register() { # name type
  local name="$1" type="$2" output attempt
  for attempt in $(seq 1 "$tries"); do
    if output="$(temporal operator search-attribute create --namespace "$namespace" --address "$address" \
          --name "$name" --type "$type" 2>&1)"; then
      echo "search attribute $name ($type): registered"
      return 0
    fi
    if grep -qi "different type" <<<"$output"; then
      echo "search attribute $name exists with another type than $type: $output" >&2
      return 1
    fi
    if grep -qi "already exists" <<<"$output"; then
      echo "search attribute $name ($type): already registered"
      return 0
    fi
    echo "search attribute $name ($type): attempt $attempt failed: $output" >&2
    sleep 2
  done
  return 1
}

for spec in "${attributes[@]}"; do
  register "${spec%%=*}" "${spec#*=}"
done

temporal operator search-attribute list --namespace "$namespace" --address "$address"
