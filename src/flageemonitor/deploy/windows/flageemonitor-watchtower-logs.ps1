# flageemonitor-watchtower-logs [docker logs options]: Watchtower's log (default: --tail 100 -f).
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-watchtower-logs'
Assert-Exists "$($script:Runtime)-watchtower"
$opts = if ($args.Count -gt 0) { $args } else { @('--tail', '100', '-f') }
& docker @script:Docker logs @opts "$($script:Runtime)-watchtower"
exit $LASTEXITCODE
