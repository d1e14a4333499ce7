# FlageeMonitor host wrappers (Windows): shared functions, dot-sourced by the five wrappers.
# The env file is read as data (KEY=VALUE lines, never executed). Logic lives in the Python CLI
# inside the container; this file only drives docker. Saved as UTF-8 without BOM.
$ErrorActionPreference = 'Stop'

$script:EnvFile = if ($env:FLAGEEMONITOR_ENV_FILE) { $env:FLAGEEMONITOR_ENV_FILE } else {
    Join-Path $PSScriptRoot '..\config\flageemonitor.env'
}
$script:Cfg = @{}
$script:DockerConfigArgs = @()

function Write-Say([string]$Message) { [Console]::Error.WriteLine("$($script:Prog): $Message") }
function Stop-WithError([string]$Message) { Write-Say "error: $Message"; exit 1 }

function Read-EnvFile {
    if (-not (Test-Path -LiteralPath $script:EnvFile)) {
        Stop-WithError "cannot read $($script:EnvFile): is FlageeMonitor installed? (run install.ps1 as Administrator)"
    }
    foreach ($line in [System.IO.File]::ReadAllLines($script:EnvFile)) {
        if ($line -eq '' -or $line.StartsWith('#')) { continue }
        $i = $line.IndexOf('=')
        if ($i -lt 1) { continue }
        $key = $line.Substring(0, $i)
        if ($key -notmatch '^[A-Za-z_][A-Za-z0-9_]*$') { continue }
        $script:Cfg[$key] = $line.Substring($i + 1)
    }
}

function Get-Cfg([string]$Name, [string]$Default = '') {
    $v = $script:Cfg[$Name]
    if ([string]::IsNullOrEmpty($v)) { return $Default }
    return $v
}

function Get-RuntimeName {
    $name = if ($env:FLAGEEMONITOR_RUNTIME_NAME) { $env:FLAGEEMONITOR_RUNTIME_NAME } else {
        Get-Cfg 'FLAGEEMONITOR_RUNTIME_NAME' 'flageemonitor'
    }
    if ($name -notmatch '^[A-Za-z0-9][A-Za-z0-9_.-]*$') { Stop-WithError "invalid FLAGEEMONITOR_RUNTIME_NAME '$name'" }
    return $name
}

function Invoke-Docker {
    # returns the exit code; output goes to the pipeline
    & docker @script:DockerConfigArgs @args
}

function Initialize-Docker {
    if (-not (Get-Command docker -ErrorAction SilentlyContinue)) {
        Stop-WithError 'docker not found: install Docker Desktop (or Docker Engine) first'
    }
    $regdir = Get-Cfg 'FLAGEEMONITOR_REGISTRY_CONFIG_DIR'
    if ($regdir -and (Test-Path -LiteralPath (Join-Path $regdir 'config.json'))) {
        $script:DockerConfigArgs = @('--config', $regdir)
    }
    Invoke-Docker info *> $null
    if ($LASTEXITCODE -ne 0) { Stop-WithError 'cannot reach the Docker daemon: start Docker Desktop, then re-run' }
}

function Test-Container([string]$Name) { Invoke-Docker container inspect $Name *> $null; return ($LASTEXITCODE -eq 0) }

function Test-Running([string]$Name) {
    $state = Invoke-Docker container inspect -f '{{.State.Running}}' $Name 2> $null
    return ($LASTEXITCODE -eq 0 -and "$state".Trim() -eq 'true')
}

function Assert-Runtime([string]$Name) {
    if (Test-Container $Name) { return }
    $others = (Invoke-Docker ps -a --filter 'label=io.flageemonitor.role=runtime' --format '{{.Names}}') -join ' '
    Write-Say "error: no container named '$Name'."
    Write-Say "The wrappers select the runtime by FLAGEEMONITOR_RUNTIME_NAME in $($script:EnvFile)."
    if ($others) { Write-Say "FlageeMonitor runtimes on this host: $others. Correct FLAGEEMONITOR_RUNTIME_NAME there." }
    else { Write-Say 'No FlageeMonitor runtime exists on this host: run flageemonitor-update-image.ps1 (or re-run the installer).' }
    exit 1
}

function Get-StateMount {
    $stateDir = Get-Cfg 'FLAGEEMONITOR_STATE_DIR' ((Get-Cfg 'FLAGEEMONITOR_CONTAINER_ROOT' '/flageemonitor') + '/state')
    $hostState = Get-Cfg 'FLAGEEMONITOR_HOST_STATE_DIR'
    return @($stateDir, $hostState)
}

# `docker run` options for the proxy container (without the image): a DIRECTORY is mounted
function Get-RuntimeRunArgs([string]$Name, [string]$Runtime) {
    $stateDir, $hostState = Get-StateMount
    $a = @('--detach', '--name', $Name, '--restart', 'unless-stopped',
        '--env-file', $script:EnvFile,
        '-e', "FLAGEEMONITOR_RUNTIME_NAME=$Runtime",
        '-e', "FLAGEEMONITOR_STATE_DIR=$stateDir",
        '-v', "${hostState}:$stateDir",
        '--label', 'io.flageemonitor.role=runtime',
        '--label', "io.flageemonitor.runtime=$Runtime",
        '--label', 'com.centurylinklabs.watchtower.enable=true',
        '--label', "com.centurylinklabs.watchtower.scope=$Runtime",
        '--stop-timeout', '30')
    $network = Get-Cfg 'FLAGEEMONITOR_DOCKER_NETWORK'
    if ($network) { $a += @('--network', $network) }
    return $a
}

function Get-WatchtowerRunArgs([string]$Runtime) {
    $image = Get-Cfg 'FLAGEEMONITOR_WATCHTOWER_IMAGE' 'nickfedor/watchtower:1.20.2'
    $interval = Get-Cfg 'FLAGEEMONITOR_WATCHTOWER_INTERVAL' '300'
    if ($interval -notmatch '^[0-9]+$') { Stop-WithError "FLAGEEMONITOR_WATCHTOWER_INTERVAL must be seconds, not '$interval'" }
    $a = @('--detach', '--name', "$Runtime-watchtower", '--restart', 'unless-stopped',
        '-v', '//var/run/docker.sock:/var/run/docker.sock',
        '--label', 'io.flageemonitor.role=watchtower',
        '--label', "io.flageemonitor.runtime=$Runtime",
        '--label', "com.centurylinklabs.watchtower.scope=$Runtime",
        '--label', 'com.centurylinklabs.watchtower.enable=false')
    $tz = Get-Cfg 'TZ'
    if ($tz) { $a += @('-e', "TZ=$tz") }
    $regdir = Get-Cfg 'FLAGEEMONITOR_REGISTRY_CONFIG_DIR'
    if ($regdir -and (Test-Path -LiteralPath (Join-Path $regdir 'config.json'))) {
        $a += @('-v', "${regdir}:/flageemonitor-registry:ro", '-e', 'DOCKER_CONFIG=/flageemonitor-registry')
    }
    $a += @($image, '--cleanup', '--label-enable', '--scope', $Runtime, '--interval', $interval)
    return $a
}

function Get-Spec([string[]]$Words) {
    $sha = [System.Security.Cryptography.SHA256]::Create()
    $bytes = [System.Text.Encoding]::UTF8.GetBytes(($Words -join "`n") + "`n")
    return (-join ($sha.ComputeHash($bytes)[0..7] | ForEach-Object { $_.ToString('x2') }))
}

function Get-EnvFileHash { return (Get-FileHash -Algorithm SHA256 -LiteralPath $script:EnvFile).Hash.Substring(0, 16).ToLower() }

function Update-Image([string]$Image) {
    Write-Say "pulling $Image"
    Invoke-Docker pull -q $Image | Out-Null
    if ($LASTEXITCODE -ne 0) {
        Invoke-Docker image inspect $Image *> $null
        if ($LASTEXITCODE -ne 0) { Stop-WithError "cannot pull $Image and no local copy exists (registry credentials?)" }
        Write-Say "warning: pull of $Image failed; using the local copy"
    }
    return ("$(Invoke-Docker image inspect -f '{{.Id}}' $Image)").Trim()
}

# The engine's health status when it reports one, else the image's HEALTHCHECK run by `docker exec`.
function Wait-Healthy([string]$Container, [int]$TimeoutSeconds) {
    $test = @(Invoke-Docker inspect -f '{{if .Config.Healthcheck}}{{range .Config.Healthcheck.Test}}{{println .}}{{end}}{{end}}' $Container |
        Where-Object { $_ -ne '' })
    $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
    while ((Get-Date) -lt $deadline) {
        $state = ("$(Invoke-Docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' $Container)").Trim() -split ' '
        if ($state[0] -in @('created', 'restarting')) { Start-Sleep -Seconds 1; continue }
        if ($state[0] -ne 'running') { Write-Say "container $Container is $($state[0])"; return $false }
        if ($state.Count -gt 1 -and $state[1] -eq 'healthy') { return $true }
        if ($state.Count -gt 1 -and $state[1] -eq 'unhealthy') { Write-Say "container $Container reports unhealthy"; return $false }
        if ($test.Count -gt 1 -and $test[0] -eq 'CMD') {
            $cmd = $test[1..($test.Count - 1)]
            Invoke-Docker exec $Container @cmd *> $null
            if ($LASTEXITCODE -eq 0) { return $true }
        } elseif ($test.Count -gt 1 -and $test[0] -eq 'CMD-SHELL') {
            Invoke-Docker exec $Container sh -c $test[1] *> $null
            if ($LASTEXITCODE -eq 0) { return $true }
        } else {
            Start-Sleep -Seconds 2
            if (Test-Running $Container) { return $true }
        }
        Start-Sleep -Seconds 2
    }
    Write-Say "container $Container did not become healthy within ${TimeoutSeconds}s"
    return $false
}

function Update-Runtime([string]$Runtime, [string]$Image) {
    $timeout = [int](Get-Cfg 'FLAGEEMONITOR_HEALTH_TIMEOUT' '120')
    if ($env:FLAGEEMONITOR_HEALTH_TIMEOUT) { $timeout = [int]$env:FLAGEEMONITOR_HEALTH_TIMEOUT }
    $next = "$Runtime-next"
    $newId = Update-Image $Image
    $runArgs = Get-RuntimeRunArgs $Runtime $Runtime
    $spec = Get-Spec (@($runArgs[2..($runArgs.Count - 1)]) + @($Image, (Get-EnvFileHash)))
    if (Test-Container $next) { Write-Say "removing $next left over from an interrupted update"; Invoke-Docker rm -f $next | Out-Null }
    if (-not (Test-Container $Runtime)) {
        Write-Say "starting $Runtime ($newId)"
        Invoke-Docker run @runArgs --label "io.flageemonitor.spec=$spec" $Image | Out-Null
        if ($LASTEXITCODE -ne 0) { Stop-WithError "docker run $Runtime failed" }
        if (-not (Wait-Healthy $Runtime $timeout)) { Write-Say "error: $Runtime is not healthy; see flageemonitor-logs.ps1"; return 1 }
        return 0
    }
    $curId = ("$(Invoke-Docker inspect -f '{{.Image}}' $Runtime)").Trim()
    $curSpec = ("$(Invoke-Docker inspect -f '{{index .Config.Labels "io.flageemonitor.spec"}}' $Runtime)").Trim()
    if ($curId -eq $newId -and $curSpec -eq $spec) {
        if (-not (Test-Running $Runtime)) { Invoke-Docker start $Runtime | Out-Null }
        Write-Say "runtime unchanged (image $newId)"
        return 0
    }
    Write-Say "new image or settings: starting $next"
    $nextArgs = Get-RuntimeRunArgs $next $Runtime
    Invoke-Docker run @nextArgs --label "io.flageemonitor.spec=$spec" $Image | Out-Null
    if ($LASTEXITCODE -ne 0) { Stop-WithError "docker run $next failed" }
    if (Wait-Healthy $next $timeout) {
        Invoke-Docker stop -t 30 $Runtime | Out-Null
        Invoke-Docker rm -f $Runtime | Out-Null
        Invoke-Docker rename $next $Runtime | Out-Null
        Write-Say "$Runtime now runs image $newId"
        return 0
    }
    Invoke-Docker logs --tail 20 $next 2>&1 | ForEach-Object { Write-Say "  $_" }
    Invoke-Docker rm -f $next | Out-Null
    if ($curId -ne $newId) { Invoke-Docker tag $curId $Image | Out-Null }
    if (-not (Test-Running $Runtime)) { Invoke-Docker start $Runtime | Out-Null }
    Write-Say "ROLLED BACK: the new image never became healthy; $Runtime keeps running image $curId"
    return 2
}

function Update-Watchtower([string]$Runtime) {
    $wt = "$Runtime-watchtower"
    $wtArgs = Get-WatchtowerRunArgs $Runtime
    $image = Get-Cfg 'FLAGEEMONITOR_WATCHTOWER_IMAGE' 'nickfedor/watchtower:1.20.2'
    $wtId = Update-Image $image
    $spec = Get-Spec (@($wtArgs) + @($wtId))
    if (Test-Container $wt) {
        $curSpec = ("$(Invoke-Docker inspect -f '{{index .Config.Labels "io.flageemonitor.spec"}}' $wt)").Trim()
        $curId = ("$(Invoke-Docker inspect -f '{{.Image}}' $wt)").Trim()
        if ($curSpec -eq $spec -and $curId -eq $wtId) {
            if (-not (Test-Running $wt)) { Write-Say "starting $wt"; Invoke-Docker start $wt | Out-Null }
            Write-Say "$wt present and up to date"
            return
        }
        Write-Say "replacing $wt (image or settings changed)"
        Invoke-Docker rm -f $wt | Out-Null
    } else {
        Write-Say "starting $wt"
    }
    Invoke-Docker run --label "io.flageemonitor.spec=$spec" @wtArgs | Out-Null
    if ($LASTEXITCODE -ne 0) { Stop-WithError "docker run $wt failed" }
}

function Start-Wrapper([string]$Prog) {
    $script:Prog = $Prog
    Read-EnvFile
    Initialize-Docker
}
