# flageemonitor-update-config: the validated, atomic config refresh inside the container; a
# one-shot container on the same state directory when the runtime is not running.
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-update-config'
$runtime = Get-RuntimeName
if (Test-Running $runtime) {
    Invoke-Docker exec $runtime flageemonitor update-config @args
    $rc = $LASTEXITCODE
    # the daemon re-reads its config file on SIGHUP
    if ($rc -eq 0) { Invoke-Docker kill --signal HUP $runtime | Out-Null }
    exit $rc
}
if (Test-Container $runtime) {
    $image = ("$(Invoke-Docker inspect -f '{{.Config.Image}}' $runtime)").Trim()
} else {
    $image = Get-Cfg 'FLAGEEMONITOR_IMAGE'
    if (-not $image) { Stop-WithError "FLAGEEMONITOR_IMAGE is not set in $($script:EnvFile)" }
}
$stateDir, $hostState = Get-StateMount
$oneShot = @('run', '--rm', '--env-file', $script:EnvFile, '-e', "FLAGEEMONITOR_RUNTIME_NAME=$runtime",
    '-e', "FLAGEEMONITOR_STATE_DIR=$stateDir", '-v', "${hostState}:$stateDir")
$network = Get-Cfg 'FLAGEEMONITOR_DOCKER_NETWORK'
if ($network) { $oneShot += @('--network', $network) }
Write-Say "$runtime is not running: refreshing the config with a one-shot container"
Invoke-Docker @oneShot $image update-config @args
exit $LASTEXITCODE
