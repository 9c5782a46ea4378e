using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RollingReboot.Core.Time;
using RollingReboot.Lab.CloudStack;
using RollingReboot.Lab.Scenario;
using RollingReboot.Lab.Sim;
using RollingReboot.Lab.Ssh;
using RollingReboot.Lab.Xapi;

namespace RollingReboot.Lab;

/// <summary>
/// A running lab: one pool, or several (a fleet, one per scenario) sharing one clock, one CloudStack and one XAPI
/// user and password. One HTTPS XAPI server per simulated host (each on its own loopback address, every pool's on the
/// same port), the CloudStack API and the audits on 127.0.0.1, an sshd per host while it is up.
/// </summary>
public sealed class LabRuntime : IAsyncDisposable
{
    private readonly List<LabPool> _pools = [];
    private readonly ScaledTimeProvider _clock;
    // Keyed by host address: names repeat across the pools of a fleet, addresses never.
    private readonly Dictionary<string, WebApplication?> _xapiServers = [];
    private readonly Dictionary<string, X509Certificate2> _certificates = [];
    private readonly Channel<Func<Task>> _effects = Channel.CreateUnbounded<Func<Task>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly TextWriter _log;
    private readonly string _stateDirectory;
    private WebApplication? _control;
    private LabCloudStack? _cloudStack;
    private LabSshd? _sshd;
    private readonly List<Task> _timers = [];
    private Task? _effectsWorker;
    private int _xapiPort;

    private LabRuntime(IReadOnlyList<ScenarioFile> scenarios, double timeScale, TextWriter log)
    {
        // The lab is where the run's clock comes from: its simulated time starts at this wall moment, which the CLI (another
        // process) is handed as ROLLREBOOT_TIME_ORIGIN, and CloudStack's "expires" is checked against the wall clock.
        var now = TimeProvider.System.GetUtcNow();
        _clock = new ScaledTimeProvider(timeScale, now, now);
        _log = log;
        Password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var nextAddress = 2;
        foreach (var scenario in scenarios)
        {
            var audit = new LabAudit(() => (_clock.GetUtcNow() - now).TotalSeconds);
            // One clock: every pool counts simulated seconds from the first pool's origin.
            var sim = new SimPool(scenario, _clock, audit, Password, _pools.Count == 0 ? null : _pools[0].Sim.Origin, nextAddress);
            nextAddress += sim.Hosts.Count;
            var pool = new LabPool(this, _pools.Count, sim, audit);
            sim.Attach(pool);
            _pools.Add(pool);
        }

        _stateDirectory = Directory.CreateTempSubdirectory("rollreboot-lab-").FullName;
        TimeOrigin = now;
    }

    /// <summary>The pools, in the order of their scenarios.</summary>
    public IReadOnlyList<LabPool> Pools => _pools;

    /// <summary>The pool named <paramref name="name"/> (its scenario's <c>pool.name</c>).</summary>
    public LabPool Pool(string name) =>
        _pools.FirstOrDefault(p => p.Name == name) ?? throw new ArgumentException($"the lab has no pool named {name}", nameof(name));

    /// <summary>The first pool's audit.</summary>
    public LabAudit Audit => _pools[0].Audit;

    public string Password { get; }

    public DateTimeOffset TimeOrigin { get; }

    public double TimeScale => _clock.Scale;

    public TimeProvider Clock => _clock;

    /// <summary>The first pool's audit URL.</summary>
    public Uri AuditUrl => _pools[0].AuditUrl;

    /// <summary>The variables under which the CLI talks to this lab with no further option.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; private set; } = new Dictionary<string, string>();

    public bool SshAvailable => _sshd is not null;

    /// <summary>
    /// A host's power button, as IPMI / iLO would press it: powers a shut-down host on (the way to bring a
    /// halted master back, whose XAPI cannot be asked). Returns false when the host is not down.
    /// </summary>
    public bool PressPowerButton(string hostName, string? poolName = null)
    {
        var pool = poolName is null ? _pools[0] : Pool(poolName);
        var sim = pool.Sim;
        lock (sim.Gate)
        {
            sim.Advance();
            var h = sim.Hosts.FirstOrDefault(x => x.Name == hostName) ?? throw new ArgumentException($"no host {hostName} in pool {pool.Name}", nameof(hostName));
            if (h.Power != Sim.HostPower.Down)
            {
                return false;
            }

            pool.Audit.Event("host.powerOn", new Dictionary<string, object?> { ["host"] = h.Name, ["via"] = "power button" });
            sim.PowerOn(h);
            return true;
        }
    }

    /// <summary>Where commands sent to a simulated host over SSH run (null without sshd).</summary>
    public string? HostShellDirectory(string hostName, string? poolName = null) =>
        _sshd?.HostShellDirectory(_pools.Count == 1 ? hostName : (poolName ?? _pools[0].Name) + "/" + hostName);

    public static Task<LabRuntime> StartAsync(ScenarioFile scenario, double timeScale, TextWriter log, CancellationToken cancellationToken = default) =>
        StartAsync([scenario], timeScale, log, cancellationToken);

    /// <summary>Starts a lab with one pool per scenario (a fleet when there are several), the first one first.</summary>
    /// <exception cref="ScenarioException">The scenarios do not make a fleet (<see cref="FleetValidation"/>).</exception>
    public static async Task<LabRuntime> StartAsync(IReadOnlyList<ScenarioFile> scenarios, double timeScale, TextWriter log, CancellationToken cancellationToken = default)
    {
        FleetValidation.Validate(scenarios);
        var lab = new LabRuntime(scenarios, timeScale, log);
        try
        {
            await lab.StartInternalAsync(cancellationToken);
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }

        return lab;
    }

    private async Task StartInternalAsync(CancellationToken cancellationToken)
    {
        var hosts = _pools.SelectMany(p => p.Sim.Hosts.Select(h => (Pool: p, Host: h))).ToList();
        var addresses = hosts.Select(ph => ph.Host.Address).ToList();
        _xapiPort = FindFreePort(addresses);
        // One certificate per host, made in parallel (a 64-host lab must start in seconds).
        var certificates = await Task.WhenAll(hosts.Select(ph => Task.Run(() => (ph.Host.Address, Cert: CreateCertificate(ph.Host.Name, ph.Host.Address)), cancellationToken)));
        foreach (var (address, cert) in certificates)
        {
            _certificates[address] = cert;
        }

        // CloudStack (one for every pool with a cloudstack section: one cluster each) and the audits on 127.0.0.1.
        foreach (var pool in _pools)
        {
            if (pool.Sim.Scenario.CloudStack is not { } cs)
            {
                continue;
            }

            var faults = pool.Sim.Scenario.Faults.Where(f => f.Type is "cloudstackError" or "unmanageFails" or "cloudstackStaleVm")
                .Select(f => f.Type switch
                {
                    "unmanageFails" => (LabCloudStackFault)new UnmanageFailsFault(),
                    "cloudstackStaleVm" => new CloudStackStaleVmFault(f.Vm!),
                    _ => new CloudStackErrorFault(f.Command!, f.Times, f.ErrorCode ?? 530),
                }).ToList();
            var jobs = cs.AsyncJobs.Select(j => new LabAsyncJob(j.Cmd, j.Host, j.Vm, j.Cluster, j.DurationSeconds, j.Account, j.Project)).ToList();
            var spec = new LabCloudStackClusterSpec
            {
                Hosts = cs.Hosts.Select(h => new LabCsHost(h.Name, h.ResourceState, h.HostTags, h.DedicatedTo, h.State)).ToList(),
                Vms = cs.Vms.Select(v => new LabCsVm(v.Name, v.Project, v.Account, v.ServiceOffering)).ToList(),
                ServiceOfferings = cs.ServiceOfferings.Select(o => new LabServiceOffering(o.Name, o.HostTags)).ToList(),
                AffinityGroups = cs.AffinityGroups.Select(g => new LabAffinityGroup(g.Name, g.Type, g.Vms)).ToList(),
            };
            if (_cloudStack is null)
            {
                // The management server's global settings come from the first scenario with a cloudstack section.
                var settings = new LabCloudStackSettings
                {
                    DefaultPageSize = cs.DefaultPageSize,
                    EnforcePostRequestsAndTimestamps = cs.EnforcePostRequestsAndTimestamps,
                    ScanInterval = TimeSpan.FromSeconds(cs.ScanIntervalSeconds),
                    ConnectTime = TimeSpan.FromSeconds(cs.ConnectSeconds),
                    DeniedCommands = cs.DeniedCommands,
                    WallClock = TimeProvider.System,
                };
                var (apiKey, secretKey) = LabCloudStack.GenerateKeys();
                _cloudStack = new LabCloudStack(cs.ClusterName, cs.Zone, cs.Pod, cs.ManagedState, apiKey, secretKey, pool.Sim, pool.Audit, _clock, faults, jobs, settings, spec);
                CloudStackKeys = (apiKey, secretKey);
                pool.CloudStack = _cloudStack.FirstCluster;
            }
            else
            {
                pool.CloudStack = _cloudStack.AddCluster(cs.ClusterName, cs.Zone, cs.Pod, cs.ManagedState, pool.Sim, pool.Audit, faults, jobs, spec);
            }
        }

        _control = BuildApp(builder => builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0)));
        _control.MapGet("/audit", (HttpContext c) => Results.Content(_pools[0].AuditJson().ToJsonString(), "application/json"));
        _control.MapGet("/audit/pool/{index:int}", (int index) => index >= 0 && index < _pools.Count
            ? Results.Content(_pools[index].AuditJson().ToJsonString(), "application/json")
            : Results.NotFound());
        if (_cloudStack is not null)
        {
            _control.Map("/client/api", _cloudStack.HandleAsync);
        }

        await _control.StartAsync(cancellationToken);
        var controlPort = new Uri(_control.Urls.First()).Port;
        foreach (var pool in _pools)
        {
            // The first pool's audit stays where a one-pool lab has always had it.
            pool.AuditUrl = new Uri(pool.Index == 0
                ? $"http://127.0.0.1:{controlPort}/audit"
                : $"http://127.0.0.1:{controlPort}/audit/pool/{pool.Index.ToString(CultureInfo.InvariantCulture)}");
        }

        // SSH: a real sshd per host where OpenSSH is installed, all on one port with one client key and known_hosts.
        if (LabSshd.IsAvailable)
        {
            // sshd start-up is wall-clock work, not simulated time.
            _sshd = new LabSshd(Path.Combine(_stateDirectory, "ssh"), LabSshd.FindFreePort(addresses), TimeProvider.System);
            await Task.WhenAll(hosts.Select(ph => Task.Run(() => _sshd.StartHostAsync(SshName(ph.Pool, ph.Host), ph.Host.Address, ph.Host.BootId, cancellationToken), cancellationToken)));
        }
        else
        {
            await _log.WriteLineAsync("rollreboot lab: " + LabSshd.NotAvailableMessage + " The lab runs without SSH endpoints; the CLI then proves reboots through XAPI only (ROLLREBOOT_SSH=off).");
        }

        foreach (var (address, app) in await StartXapiServersAsync(hosts, addresses, cancellationToken))
        {
            _xapiServers[address] = app;
        }

        _effectsWorker = Task.Run(RunEffectsAsync, CancellationToken.None);
        foreach (var pool in _pools)
        {
            _timers.Add(Task.Run(() => pool.Sim.RunTimerAsync(_stop.Token), CancellationToken.None));
        }

        var first = _pools[0].Sim;
        var env = new Dictionary<string, string>
        {
            ["ROLLREBOOT_XAPI_URL"] = $"https://{first.Hosts[0].Address}:{_xapiPort}/",
            // Every pool of a fleet has the same user and password (FleetValidation).
            ["ROLLREBOOT_XAPI_USER"] = first.User,
            ["ROLLREBOOT_XAPI_PASSWORD"] = Password,
            ["ROLLREBOOT_XAPI_CERT_SHA256"] = string.Join(",", _certificates.Values.Select(Tls.XapiFingerprint)),
            ["ROLLREBOOT_TIME_SCALE"] = TimeScale.ToString("R", CultureInfo.InvariantCulture),
            ["ROLLREBOOT_TIME_ORIGIN"] = TimeOrigin.ToString("O", CultureInfo.InvariantCulture),
        };
        if (_cloudStack is not null)
        {
            env["ROLLREBOOT_CLOUDSTACK_URL"] = $"http://127.0.0.1:{controlPort}/client/api";
            env["ROLLREBOOT_CLOUDSTACK_API_KEY"] = CloudStackKeys!.Value.ApiKey;
            env["ROLLREBOOT_CLOUDSTACK_SECRET_KEY"] = CloudStackKeys!.Value.SecretKey;
        }

        if (_sshd is not null)
        {
            foreach (var (k, v) in _sshd.CliEnvironment)
            {
                env[k] = v;
            }
        }
        else
        {
            env["ROLLREBOOT_SSH"] = "off";
        }

        Environment = env;
    }

    /// <summary>The sshd's name of a host: its own in a one-pool lab; in a fleet, qualified by its pool (names may repeat across pools).</summary>
    private string SshName(LabPool pool, SimHost host) => _pools.Count == 1 ? host.Name : pool.Name + "/" + host.Name;

    public (string ApiKey, string SecretKey)? CloudStackKeys { get; private set; }

    public int XapiPort => _xapiPort;

    /// <summary>
    /// The one line the lab prints on stdout when everything listens: <c>ready</c>, <c>env</c>, <c>auditUrl</c> (the
    /// first pool's) and <c>audits</c> (every pool's audit URL by pool name).
    /// </summary>
    public string ReadyLine() => new JsonObject
    {
        ["ready"] = true,
        ["env"] = new JsonObject(Environment.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["auditUrl"] = AuditUrl.ToString(),
        ["audits"] = new JsonObject(_pools.Select(p => KeyValuePair.Create(p.Name, (JsonNode?)p.AuditUrl.ToString()))),
    }.ToJsonString();

    /// <summary>The first pool's audit document.</summary>
    public JsonObject AuditJson() => _pools[0].AuditJson();

    internal void XapiServing(LabPool pool, SimHost host, bool serving) =>
        _effects.Writer.TryWrite(async () =>
        {
            if (serving)
            {
                if (_xapiServers.GetValueOrDefault(host.Address) is null)
                {
                    _xapiServers[host.Address] = await StartXapiAsync(pool, host, _stop.Token);
                }
            }
            else if (_xapiServers.GetValueOrDefault(host.Address) is { } app)
            {
                _xapiServers[host.Address] = null;
                await StopAppAsync(app);
            }
        });

    internal void HostPowered(LabPool pool, SimHost host, bool up)
    {
        // CloudStack sees the host go down or come back at that simulated moment, however short the outage
        // and however slow the effects below (sshd) are under load.
        pool.CloudStack?.OnPoolChanged();
        var bootId = host.BootId;
        _effects.Writer.TryWrite(async () =>
        {
            if (_sshd is not null)
            {
                var sshName = SshName(pool, host);
                if (!up)
                {
                    await _sshd.StopHostAsync(sshName);
                }
                else if (!_sshd.IsRunning(sshName))
                {
                    // Not answering since earlier in this boot (SshAnswering): a host brought up without a boot (a test's
                    // power-on of a host that never went through one) starts it now.
                    await StartSshAsync(pool, host, sshName, bootId);
                }
            }

            // The host's own cluster reacts (a host of another pool is none of its business).
            pool.CloudStack?.OnPoolChanged();
        });
    }

    /// <summary>A booting host's sshd answers before its xapi starts (<c>pool.sshBeforeXapiSeconds</c>), with the new boot id.</summary>
    internal void SshAnswering(LabPool pool, SimHost host, string bootId) =>
        _effects.Writer.TryWrite(async () =>
        {
            if (_sshd is not null)
            {
                await StartSshAsync(pool, host, SshName(pool, host), bootId);
            }
        });

    private async Task StartSshAsync(LabPool pool, SimHost host, string sshName, string bootId)
    {
        ApplySshFaults(pool, host.Name, sshName);
        _sshd!.SetBootId(sshName, bootId);
        await _sshd.StartHostAsync(sshName, host.Address, bootId, _stop.Token);
    }

    /// <summary>SSH faults strike at the host's next boot: a new host key, or the CLI's key refused.</summary>
    private void ApplySshFaults(LabPool pool, string hostName, string sshName)
    {
        foreach (var f in pool.Sim.Scenario.Faults.Where(f => f.Host == hostName && f.Times > 0 && f.Type is "sshHostKeyChanged" or "sshAuthFails").ToList())
        {
            f.Times--;
            if (f.Type == "sshHostKeyChanged")
            {
                _sshd!.ReplaceHostKey(sshName);
            }
            else
            {
                _sshd!.RefuseClientKey(sshName);
            }

            pool.Audit.Event("ssh.fault", new Dictionary<string, object?> { ["host"] = hostName, ["fault"] = f.Type });
        }
    }

    private async Task RunEffectsAsync()
    {
        await foreach (var effect in _effects.Reader.ReadAllAsync())
        {
            try
            {
                await effect();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                await _log.WriteLineAsync("rollreboot lab: " + e.Message);
            }
        }
    }

    private async Task<WebApplication> StartXapiAsync(LabPool pool, SimHost host, CancellationToken cancellationToken)
    {
        var certificate = _certificates[host.Address];
        var handler = new XapiHttpHandler(pool.Sim, host.Address);
        var app = BuildApp(builder => builder.WebHost.ConfigureKestrel(k =>
        {
            // HTTP/1.1 only (no HTTP/2 by ALPN): behind its TLS terminator xapi reads HTTP/1.x requests and answers "1.0" or
            // "1.1" (ocaml/libs/http-lib/http_svr.ml read_request_exn, get_return_version).
            k.Listen(IPAddress.Parse(host.Address), _xapiPort, listen =>
            {
                listen.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1;
                listen.UseHttps(certificate);
            });
            k.Limits.MaxRequestBodySize = 64 * 1024 * 1024;
        }));
        app.Run(handler.HandleAsync);
        await app.StartAsync(cancellationToken);
        return app;
    }

    private static WebApplication BuildApp(Action<WebApplicationBuilder> configure)
    {
        // No appsettings.json watcher per server: with reload on change each app holds an inotify instance, and a 64-host
        // lab would use half of Linux's default 128 per user (fs.inotify.max_user_instances).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));
        configure(builder);
        return builder.Build();
    }

    private static async Task StopAppAsync(WebApplication app)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await app.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            // Connections still open are cut by DisposeAsync.
        }

        await app.DisposeAsync();
    }

    private static X509Certificate2 CreateCertificate(string hostName, string address)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={hostName}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Parse(address));
        san.AddDnsName(hostName);
        request.CertificateExtensions.Add(san.Build());
        // Wall time, not the lab's: TLS clients check a certificate's validity against the machine's real clock.
        var now = TimeProvider.System.GetUtcNow();
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }

    /// <summary>
    /// Every host's XAPI server on the one port. The port was free on every address when chosen, but another process (a
    /// second lab, whose host comes back up) may take it on one of them before our bind: then the servers started are
    /// stopped and another port is chosen, a few times.
    /// </summary>
    private async Task<(string Address, WebApplication App)[]> StartXapiServersAsync(List<(LabPool Pool, SimHost Host)> hosts, IReadOnlyList<string> addresses, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var starts = hosts.Select(async ph => (ph.Host.Address, App: await StartXapiAsync(ph.Pool, ph.Host, cancellationToken))).ToList();
            try
            {
                return await Task.WhenAll(starts);
            }
            catch (IOException e) when (attempt < 5 && e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
                foreach (var started in starts.Where(t => t.IsCompletedSuccessfully))
                {
                    await StopAppAsync(started.Result.App);
                }

                _xapiPort = FindFreePort(addresses);
            }
        }
    }

    private static int FindFreePort(IReadOnlyList<string> addresses)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            using var probe = new System.Net.Sockets.TcpListener(IPAddress.Parse(addresses[0]), 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            if (addresses.All(a => IsFree(a, port)))
            {
                return port;
            }
        }

        throw new IOException("no TCP port is free on every lab host address");
    }

    private static bool IsFree(string address, int port)
    {
        try
        {
            using var l = new System.Net.Sockets.TcpListener(IPAddress.Parse(address), port);
            l.Start();
            l.Stop();
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _effects.Writer.TryComplete();
        if (_effectsWorker is not null)
        {
            await _effectsWorker;
        }

        await Task.WhenAll(_timers);

        foreach (var app in _xapiServers.Values.Where(a => a is not null))
        {
            await StopAppAsync(app!);
        }

        if (_control is not null)
        {
            await StopAppAsync(_control);
        }

        if (_sshd is not null)
        {
            await _sshd.DisposeAsync();
        }

        _cloudStack?.Dispose();
        foreach (var c in _certificates.Values)
        {
            c.Dispose();
        }

        _stop.Dispose();
        try
        {
            Directory.Delete(_stateDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }

    private static class Tls
    {
        public static string XapiFingerprint(X509Certificate2 c) => Convert.ToHexStringLower(SHA256.HashData(c.RawData));
    }
}
