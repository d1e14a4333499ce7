# flageemonitor-update-image: the update engine pulls, swaps the runtime once the new one is healthy
# (else rolls back: exit 2), and makes sure Watchtower is present and right.
. (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')
Start-Wrapper 'flageemonitor-update-image'
exit (Invoke-Host update-image)
