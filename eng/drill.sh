#!/usr/bin/env bash
# The hot-remove drill (README's first command): dotnet run -c Release --project Allocator.Bench -- drill [options]
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
exec dotnet run -c Release --project Allocator.Bench -- drill "$@"
