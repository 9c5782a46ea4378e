using System.Globalization;
using RollingReboot.CloudStack;
using RollingReboot.Cli.Adapters;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Ssh;
using RollingReboot.Xapi;

namespace RollingReboot.Cli.Commands;

/// <summary>What a command asks of its session: the cluster, where to find it, and how to log.</summary>
/// <param name="Exec">The run changes the pool: it gets a log file (a dry run only logs to stderr).</param>
/// <param name="LabLabel">When the run is against the embedded lab: its name, said in the log.</param>
internal sealed record SessionRequest(CliEnvironment Env, string Cluster, string? Zone, string? CmkProfile, bool Exec, bool Verbose, FleetContext? Fleet, string? LabLabel);

/// <summary>The local hooks and remote commands of a run, and what preflight runs of them.</summary>
internal sealed record HookRunners(IRemoteShell? Remote, ILocalCommandRunner? Local, PreflightCommands? Preflight)
{
    /// <summary>Restore, evacuate and return run no hooks.</summary>
    public static HookRunners None { get; } = new(null, null, null);
}

/// <summary>
/// One cluster's adapters for one command: the run id, the log, CloudStack, the pool connection and the notifier.
/// Built in this order (so the first problem is the one reported) and disposed in reverse.
/// </summary>
internal sealed class RunSession : IAsyncDisposable
{
    private static readonly TimeSpan s_reachableRetry = TimeSpan.FromSeconds(10);

    private readonly SessionRequest _request;
    private readonly Serilog.Core.Logger _logger;
    private CloudStackClient? _cloudClient;
    private XapiPoolConnection? _pool;
    private WebhookNotifier? _notifier;
    private PrometheusAlerts? _alerts;
    private CancellationTokenSource? _loginStop;
    private Task? _login;

    private RunSession(SessionRequest request, TimeProvider clock, string runId, string stateDir, Serilog.Core.Logger logger, ConsoleLogTarget console, XapiSettings settings)
    {
        ConsoleLog = console;
        _request = request;
        Clock = clock;
        RunId = runId;
        StateDir = stateDir;
        _logger = logger;
        Log = new SerilogRunLog(logger);
        Settings = settings;
    }

    public CliEnvironment Env => _request.Env;

    public string Cluster => _request.Cluster;

    public FleetContext? Fleet => _request.Fleet;

    public TimeProvider Clock { get; }

    /// <summary>This invocation's id: it names the log file and a new run's journal.</summary>
    public string RunId { get; }

    public string StateDir { get; }

    public IRunLog Log { get; }

    /// <summary>Where the log's stderr lines go: the live view takes them over while it is shown.</summary>
    public ConsoleLogTarget ConsoleLog { get; }

    /// <summary>Where the pool is; in a fleet, the address CloudStack gives for the cluster.</summary>
    public XapiSettings Settings { get; private set; }

    /// <summary>The CloudStack cluster, or null without CloudStack settings.</summary>
    public ClusterBinding? Cloud { get; private set; }

    public XapiPoolConnection Pool => _pool!;

    public static async Task<RunSession> OpenAsync(SessionRequest request, XapiOptions xapi, System.CommandLine.ParseResult parse, CancellationToken cancellationToken)
    {
        var clock = request.Env.CreateClock();
        var runId = clock.GetUtcNow().UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..6];
        var stateDir = request.Env.StateDirectory();
        var logFile = request.Exec ? Path.Combine(stateDir, "logs", $"run-{runId}.clef") : null;
        var console = new ConsoleLogTarget(request.Env.Error);
        var logger = (Serilog.Core.Logger)Logging.Create(request.Env, logFile, clock, request.Verbose, request.Fleet is null ? null : request.Cluster, console);
        XapiSettings settings;
        try
        {
            settings = xapi.Resolve(parse, request.Env);
        }
        catch
        {
            logger.Dispose();
            throw;
        }

        var session = new RunSession(request, clock, runId, stateDir, logger, console, settings);
        try
        {
            await session.ConnectAsync(cancellationToken);
            return session;
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    /// <summary>The CloudStack client from the environment or a CloudMonkey profile; null when none is configured.</summary>
    public static CloudStackClient? CreateCloudStack(CliEnvironment env, string? cmkProfile)
    {
        CloudStackCredentials? credentials;
        try
        {
            // ~/.cmk/config is read only when a CloudMonkey profile is asked for (option or environment).
            var wantsProfile = cmkProfile is not null || env.Get(CloudStackCredentials.ProfileVariable) is not null;
            credentials = CloudStackCredentials.Resolve(env.GetVariable, cmkProfile, wantsProfile && env.Get("HOME") is { } home ? Path.Combine(home, ".cmk", "config") : null);
        }
        catch (CloudStackException e)
        {
            throw new UserFacingException(e.Message);
        }

        // Network timeouts are about the wire, not the simulated pool: wall clock. The run's own waits use the run's clock.
        return credentials is null ? null : new CloudStackClient(CloudStackClientOptions.FromCredentials(credentials), timeProvider: TimeProvider.System);
    }

    /// <summary>The pool as it is now; it must be the cluster's.</summary>
    public async Task<PoolSnapshot> ReadPoolAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _login, null) is { } login)
        {
            // The login started beside CloudStack's lookup: its failure is the read's (no second attempt with the same password).
            await login;
        }

        return CheckPoolName(await Pool.ReadAsync(cancellationToken));
    }

    /// <summary>
    /// Resume and restore may start while the dead run's master is still rebooting: wait for the pool,
    /// bounded by --host-timeout, instead of failing at once.
    /// </summary>
    public async Task<PoolSnapshot> ReadWhenReachableAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Clock.GetUtcNow() + timeout;
        while (true)
        {
            try
            {
                return CheckPoolName(await Pool.ReadAsync(cancellationToken));
            }
            catch (XapiException e) when ((e.IsUnreachable || e.Code is "HOST_STILL_BOOTING" or "SESSION_INVALID") && Clock.GetUtcNow() < deadline)
            {
                await Env.Error.WriteLineAsync($"rollreboot: the pool does not answer yet ({e.Code}); waiting for its master");
                await Task.Delay(s_reachableRetry, Clock, cancellationToken);
            }
        }
    }

    /// <summary>The SSH probe that proves reboots (and runs remote commands); null when SSH is off.</summary>
    public IHostProbe? CreateProbe(bool acceptNewHostKeys)
    {
        if (Env.Get(EnvNames.Ssh) is "off" or "0" or "false")
        {
            return null;
        }

        try
        {
            var options = SshProbeOptions.FromEnvironment(Env.GetVariable) with { AcceptNew = acceptNewHostKeys };
            // SSH timeouts are about the network, not the simulated pool: wall clock.
            return new SshHostProbe(options, TimeProvider.System);
        }
        catch (SshProbeConfigurationException e)
        {
            throw new UserFacingException("SSH: " + e.Message + $" (set {EnvNames.Ssh}=off to prove reboots through XAPI only)");
        }
    }

    /// <summary>The alert gate on the Prometheus of --prometheus-url; null without one. Logged without credentials.</summary>
    public AlertGate? CreateAlertGate(AlertSettings? settings)
    {
        if (settings is null)
        {
            return null;
        }

        _alerts = new PrometheusAlerts(settings.Url);
        Log.Info("Alert gate: {Source}{Filter}", _alerts.Description,
            (settings.Options.Filter is { } f ? $", alerts whose name matches /{f}/ {(settings.Options.FilterMatchOnly ? "alone count" : "do not count")}" : "")
            + (settings.Options.FiringOnly ? ", firing alerts only" : ", pending and firing alerts"));
        return new AlertGate(_alerts, settings.Options);
    }

    /// <summary>What runs the hooks: SSH for remote commands, this machine for local ones, and preflight's share.</summary>
    public HookRunners CreateHookRunners(HookOptions hooks, bool acceptNewHostKeys, AlertGate? alerts = null)
    {
        IRemoteShell? remote = null;
        if (hooks.PreHostCommand is not null || hooks.PostHostCommand is not null || hooks.NeedsRebootCommand is not null)
        {
            remote = CreateProbe(acceptNewHostKeys) as IRemoteShell
                ?? throw new UserFacingException($"--pre-host-command, --post-host-command and --needs-reboot-command run over SSH, which is off ({EnvNames.Ssh}=off); configure SSH or drop them");
        }

        var local = hooks.PreHostHook is not null || hooks.PostHostHook is not null || hooks.BlockerCommand is not null ? new LocalCommandRunner() : null;
        var preflight = hooks.BlockerCommand is not null || hooks.NeedsRebootCommand is not null || alerts is not null
            ? new PreflightCommands(new HostCommands(hooks, local, remote, Log), Cluster, RunId) { Alerts = alerts }
            : null;
        return new HookRunners(remote, local, preflight);
    }

    /// <summary>Says what is about to run, starts the notifier, and gathers what the run is built from.</summary>
    /// <param name="runId">The run's id: this invocation's, or the unfinished run's for resume and restore.</param>
    public RunParts PrepareRun(string runId, PoolSnapshot pool, RunOptions options, IHostProbe? probe, HookRunners runners, NotifySettings? notify, AlertGate? alerts = null)
    {
        Log.Info("Run {RunId} on pool {Pool} (cluster {Cluster}); journal and log under {StateDir}", runId, pool.Name, Cluster, StateDir);
        if (_request.LabLabel is not null)
        {
            Log.Warn("This run is against {Lab}: a simulation, no real host is touched", _request.LabLabel);
        }

        _notifier = notify is null ? null : new WebhookNotifier(notify.Url, Log, Clock, template: notify.Template);
        if (notify is not null)
        {
            Log.Info("Notifications go to {Url}{Template}", WebhookNotifier.Redact(notify.Url), notify.Template is { } t ? $" as {t.Path} ({t.MediaType})" : "");
        }

        return new RunParts(Pool, Cloud, probe, Log, Clock, options, runId, Cluster)
        {
            LocalCommands = runners.Local,
            RemoteShell = runners.Remote,
            Notifier = _notifier,
            Alerts = alerts,
        };
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _login, null) is { } login)
        {
            // Never read (CloudStack failed first, or the command needed no read): stopped, its failure observed.
            await _loginStop!.CancelAsync();
            await login.Settled();
        }

        _loginStop?.Dispose();
        try
        {
            try
            {
                if (_notifier is not null)
                {
                    await _notifier.DisposeAsync();
                }
            }
            finally
            {
                if (_pool is not null)
                {
                    await _pool.DisposeAsync();
                }
            }
        }
        finally
        {
            _alerts?.Dispose();
            _cloudClient?.Dispose();
            _logger.Dispose();
        }
    }

    private static async Task<CloudStackCluster> FindClusterAsync(ICloudStack api, string name, string? zone, CancellationToken cancellationToken)
    {
        var found = await api.FindClustersAsync(name, zone, cancellationToken);
        return found.Count switch
        {
            0 => throw new UserFacingException($"CloudStack has no cluster named '{name}'{(zone is null ? "" : " in zone " + zone)}; check the name (cmk list clusters)"),
            1 => found[0],
            _ => throw new UserFacingException($"CloudStack has {found.Count} clusters named '{name}' (zones {string.Join(", ", found.Select(c => c.ZoneName))}); add --zone to pick one"),
        };
    }

    /// <summary>CloudStack's cluster (and, in a fleet, the address of its pool), then the pool connection.</summary>
    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        _cloudClient = CreateCloudStack(Env, _request.CmkProfile);
        if (_cloudClient is not null && Fleet is null)
        {
            // The pool's address is known before CloudStack is asked (only a fleet takes it from CloudStack): the XAPI
            // login goes on while the cluster is looked up. A CloudStack failure is still the one reported.
            _pool = NewPool();
            _loginStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _login = _pool.Client.LoginAsync(_loginStop.Token);
        }

        try
        {
            if (_cloudClient is not null)
            {
                Cloud = new ClusterBinding(_cloudClient, await FindClusterAsync(_cloudClient, Cluster, _request.Zone, cancellationToken));
                if (Fleet is not null)
                {
                    Settings = await FleetContext.PoolAddressAsync(Settings, _cloudClient, Cloud.Cluster, cancellationToken);
                }
            }
        }
        catch (CloudStackException e)
        {
            throw new UserFacingException(CloudStackErrors.Describe(e));
        }

        _pool ??= NewPool();
    }

    /// <summary>The pool connection at <see cref="Settings"/>; a run keeps its records from the first read on.</summary>
    private XapiPoolConnection NewPool() => new(Connections.CreateXapiClient(Settings, Env, Clock)) { ModelFromFirstRead = _request.Exec };

    private PoolSnapshot CheckPoolName(PoolSnapshot pool) =>
        Cloud is null && !pool.Name.Equals(Cluster, StringComparison.Ordinal)
            ? throw new UserFacingException($"the pool at {Settings.Url.Host} is named '{pool.Name}', not '{Cluster}'; without CloudStack settings --clustername must name the pool")
            : pool;
}
