# flageemonitor-run <action> [options]: run an action in the container; exit code passed through.
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-run'
if ($args.Count -eq 0) {
    Write-Say 'usage: flageemonitor-run.ps1 <action> [options]    e.g. flageemonitor-run.ps1 diagnose_env --loja 1'
    exit 1
}
$runtime = Get-RuntimeName
Assert-Runtime $runtime
if (-not (Test-Running $runtime)) { Stop-WithError "$runtime is not running: start it with flageemonitor-update-image.ps1" }
$tty = @()
if (-not [Console]::IsInputRedirected -and -not [Console]::IsOutputRedirected) { $tty = @('-it') }
Invoke-Docker exec @tty $runtime flageemonitor run @args
exit $LASTEXITCODE
