# flageemonitor-run <action> [options]: run an action in the container; exit code passed through.
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-run'
if ($args.Count -eq 0) { Stop-WithError 'usage: flageemonitor-run.ps1 <action> [options]    e.g. flageemonitor-run.ps1 diagnose_env --loja 1' }
Assert-Exists $script:Runtime
$tty = @()
if (-not [Console]::IsInputRedirected -and -not [Console]::IsOutputRedirected) { $tty = @('-it') }
& docker @script:Docker exec @tty $script:Runtime flageemonitor run @args
exit $LASTEXITCODE
