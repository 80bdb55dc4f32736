#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# libtf-grpc-client.so exports what its users call and nothing else: its client
# API (namespace turtlefinder::clients::grpc, for the containerd and crio
# plugins), no more than MAX symbols in all. No generated code of the
# containerd or CRI protos, no gRPC, protobuf, Boost or std instance of its
# own: that is what
# clients/grpc/client.map keeps inside, and what this keeps from growing back.
# It is also marked never to be unloaded (NODELETE): protobuf keeps pointers
# into its generated code, and a reload would register it twice (an abort).
# usage: check-client-exports.sh NM CXXFILT READELF LIBRARY MAX
set -eu
nm=$1 cxxfilt=$2 readelf=$3 lib=$4 max=$5
[ -f "$lib" ] || { echo "FAIL: $lib does not exist" >&2; exit 1; }
symbols=$("$nm" -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | "$cxxfilt" | sort -u)
status=0 count=0 api=0
while IFS= read -r symbol; do
    [ -n "$symbol" ] || continue
    count=$((count + 1))
    case $symbol in
    *turtlefinder::clients::grpc::*) api=$((api + 1)) ;;
    *)
        echo "FAIL: exported, but not the client API: $symbol" >&2
        status=1
        ;;
    esac
done <<EOS
$symbols
EOS
if [ "$count" -gt "$max" ]; then
    echo "FAIL: $lib exports $count symbols, more than $max" >&2
    status=1
fi
[ "$api" -gt 0 ] || { echo "FAIL: $lib exports none of its client API" >&2; status=1; }
"$readelf" -d "$lib" | grep -q "NODELETE" || { echo "FAIL: $lib is not marked NODELETE" >&2; status=1; }
[ $status -ne 0 ] || echo "ok: $lib exports $count symbols ($api of the client API), at most $max"
exit $status
