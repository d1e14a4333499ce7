# flageemonitor-update-image: pull; swap the runtime only once the new one is healthy (else roll
# back); make sure Watchtower is present and right. Runtime and Watchtower are handled together.
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-update-image'
$runtime = Get-RuntimeName
$image = Get-Cfg 'FLAGEEMONITOR_IMAGE'
if (-not $image) { Stop-WithError "FLAGEEMONITOR_IMAGE is not set in $($script:EnvFile)" }
$rc = Update-Runtime $runtime $image
Update-Watchtower $runtime
if ($rc -eq 2) {
    # Watchtower would deploy the same broken image at its next poll without a health gate
    Invoke-Docker stop "$runtime-watchtower" | Out-Null
    Write-Say "Watchtower ($runtime-watchtower) is stopped so it does not deploy that image;"
    Write-Say 'publish a fixed image, then run flageemonitor-update-image.ps1 again.'
}
exit $rc
