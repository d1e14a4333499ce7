# FlageeMonitor host wrappers (Windows): dot-sourced by the five wrappers. They pass arguments and
# show errors only: the update engine (`flageemonitor host`) decides, in a one-shot container of the
# proxy image with the engine socket and the env file mounted. Saved as UTF-8 without BOM.
$ErrorActionPreference = 'Stop'
$script:EnvFile = if ($env:FLAGEEMONITOR_ENV_FILE) { $env:FLAGEEMONITOR_ENV_FILE } else { Join-Path $PSScriptRoot '..\config\flageemonitor.env' }
function Stop-WithError([string]$Message) { [Console]::Error.WriteLine("$($script:Prog): error: $Message"); exit 1 }

# the value of one KEY=VALUE line of the env file, read as data (never executed)
function Get-Cfg([string]$Name) {
    foreach ($line in [System.IO.File]::ReadAllLines($script:EnvFile)) { if ($line.StartsWith("$Name=")) { return $line.Substring($Name.Length + 1) } }
    return ''
}

function Start-Wrapper([string]$Prog) {
    $script:Prog = $Prog
    if (-not (Test-Path -LiteralPath $script:EnvFile)) { Stop-WithError "cannot read $($script:EnvFile): is FlageeMonitor installed? (run install.ps1 as Administrator)" }
    if (-not (Get-Command docker -ErrorAction SilentlyContinue)) { Stop-WithError 'docker not found: install Docker Desktop (or Docker Engine) first' }
    $script:Runtime = if ($env:FLAGEEMONITOR_RUNTIME_NAME) { $env:FLAGEEMONITOR_RUNTIME_NAME } else { Get-Cfg 'FLAGEEMONITOR_RUNTIME_NAME' }
    $script:Docker = @(); $script:Mounts = @('-v', '//var/run/docker.sock:/var/run/docker.sock', '-v', "$($script:EnvFile):/run/flageemonitor/host.env:ro",
        '-v', "$(Get-Cfg 'FLAGEEMONITOR_HOST_STATE_DIR'):/run/flageemonitor/state")
    $regdir = Get-Cfg 'FLAGEEMONITOR_REGISTRY_CONFIG_DIR'
    if ($regdir -and (Test-Path -LiteralPath (Join-Path $regdir 'config.json'))) {
        $script:Docker = @('--config', $regdir); $script:Mounts += @('-v', "${regdir}:/run/flageemonitor/registry:ro", '-e', 'DOCKER_CONFIG=/run/flageemonitor/registry')
    }
    & docker @script:Docker info *> $null
    if ($LASTEXITCODE -ne 0) { Stop-WithError 'cannot reach the Docker daemon: start Docker Desktop, then re-run' }
}

# `flageemonitor host ARGS` in a one-shot engine container; returns its exit code
function Invoke-Host {
    & docker @script:Docker run --rm --user 0:0 --network none --label io.flageemonitor.role=engine @script:Mounts -e "FLAGEEMONITOR_HOST_ENV_FILE=$($script:EnvFile)" `
        -e FLAGEEMONITOR_RUNTIME_NAME -e FLAGEEMONITOR_HEALTH_TIMEOUT -e FLAGEEMONITOR_HOLD_INTERVAL -e FLAGEEMONITOR_CHANNEL_INTERVAL (Get-Cfg 'FLAGEEMONITOR_IMAGE') host @args | Out-Host
    return $LASTEXITCODE
}

# exit 1 with the engine's explanation unless the container exists
function Assert-Exists([string]$Name) {
    & docker @script:Docker container inspect $Name *> $null
    if ($LASTEXITCODE -ne 0) { $null = Invoke-Host explain-missing $Name; exit 1 }
}
