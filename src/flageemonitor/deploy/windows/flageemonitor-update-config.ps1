# flageemonitor-update-config [args]: the validated, atomic config refresh, run by the update engine
# in the runtime (then SIGHUP), or in a one-shot container when the runtime is not running.
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-update-config'
exit (Invoke-Host update-config @args)
