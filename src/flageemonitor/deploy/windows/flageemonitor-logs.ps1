# flageemonitor-logs [docker logs options]: the proxy's log (default: --tail 100 -f).
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-logs'
Assert-Exists $script:Runtime
$opts = if ($args.Count -gt 0) { $args } else { @('--tail', '100', '-f') }
& docker @script:Docker logs @opts $script:Runtime
exit $LASTEXITCODE
