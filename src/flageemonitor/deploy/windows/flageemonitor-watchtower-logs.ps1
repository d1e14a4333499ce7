# flageemonitor-watchtower-logs [docker logs options]: Watchtower's log (default: --tail 100 -f).
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-watchtower-logs'
$runtime = Get-RuntimeName
if (-not (Test-Container "$runtime-watchtower")) {
    Stop-WithError "Watchtower ($runtime-watchtower) is missing: run flageemonitor-update-image.ps1 (or re-run the installer)"
}
$opts = if ($args.Count -gt 0) { $args } else { @('--tail', '100', '-f') }
Invoke-Docker logs @opts "$runtime-watchtower"
exit $LASTEXITCODE
