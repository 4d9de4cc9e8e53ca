#!/usr/bin/env bash
# Builds the solution (Release by default; pass -c Debug for a checked build).
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
dotnet build Allocator.sln -c Release -warnaserror "$@"
