# flageemonitor-logs [docker logs options]: the proxy's log (default: --tail 100 -f).
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-logs'
$runtime = Get-RuntimeName
Assert-Runtime $runtime
$opts = if ($args.Count -gt 0) { $args } else { @('--tail', '100', '-f') }
Invoke-Docker logs @opts $runtime
exit $LASTEXITCODE
