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
/// A running lab: one HTTPS XAPI server per simulated host (each on its own loopback address), the
/// CloudStack API and the audit on 127.0.0.1, an sshd per host while it is up, and the simulation's clock.
/// </summary>
public sealed class LabRuntime : IAsyncDisposable, ISimEnvironment
{
    private readonly SimPool _pool;
    private readonly ScaledTimeProvider _clock;
    private readonly Dictionary<string, WebApplication?> _xapiServers = [];
    private readonly Dictionary<string, X509Certificate2> _certificates = [];
    private readonly Channel<Func<Task>> _effects = Channel.CreateUnbounded<Func<Task>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly TextWriter _log;
    private readonly string _stateDirectory;
    private WebApplication? _control;
    private LabCloudStack? _cloudStack;
    private LabSshd? _sshd;
    private Task? _timer;
    private Task? _effectsWorker;
    private int _xapiPort;

    private LabRuntime(ScenarioFile scenario, double timeScale, TextWriter log)
    {
        var now = TimeProvider.System.GetUtcNow();
        _clock = new ScaledTimeProvider(timeScale, now, now);
        _log = log;
        Audit = new LabAudit(() => (_clock.GetUtcNow() - now).TotalSeconds);
        Password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        _pool = new SimPool(scenario, _clock, Audit, Password);
        _pool.Attach(this);
        _stateDirectory = Directory.CreateTempSubdirectory("rollreboot-lab-").FullName;
        TimeOrigin = now;
    }

    public LabAudit Audit { get; }

    public string Password { get; }

    public DateTimeOffset TimeOrigin { get; }

    public double TimeScale => _clock.Scale;

    public TimeProvider Clock => _clock;

    public Uri AuditUrl { get; private set; } = null!;

    /// <summary>The variables under which the CLI talks to this lab with no further option.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; private set; } = new Dictionary<string, string>();

    public bool SshAvailable => _sshd is not null;

    public static async Task<LabRuntime> StartAsync(ScenarioFile scenario, double timeScale, TextWriter log, CancellationToken cancellationToken = default)
    {
        var lab = new LabRuntime(scenario, timeScale, log);
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
        var scenario = _pool.Scenario;
        var addresses = _pool.Hosts.Select(h => h.Address).ToList();
        _xapiPort = FindFreePort(addresses);
        // One certificate per host, made in parallel (a 64-host lab must start in seconds).
        var certificates = await Task.WhenAll(_pool.Hosts.Select(h => Task.Run(() => (h.Name, Cert: CreateCertificate(h.Name, h.Address)), cancellationToken)));
        foreach (var (name, cert) in certificates)
        {
            _certificates[name] = cert;
        }

        // CloudStack and the audit on 127.0.0.1.
        if (scenario.CloudStack is { } cs)
        {
            var (apiKey, secretKey) = LabCloudStack.GenerateKeys();
            var faults = scenario.Faults.Where(f => f.Type is "cloudstackError" or "unmanageFails")
                .Select(f => f.Type == "unmanageFails" ? (LabCloudStackFault)new UnmanageFailsFault() : new CloudStackErrorFault(f.Command!, f.Times, f.ErrorCode ?? 530)).ToList();
            var jobs = cs.AsyncJobs.Select(j => new LabAsyncJob(j.Cmd, j.Host, j.Vm, j.Cluster, j.DurationSeconds, j.Account)).ToList();
            _cloudStack = new LabCloudStack(cs.ClusterName, cs.Zone, cs.Pod, cs.ManagedState, apiKey, secretKey, _pool, Audit, _clock, faults, jobs);
            CloudStackKeys = (apiKey, secretKey);
        }

        _control = BuildApp(builder => builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0)));
        _control.MapGet("/audit", (HttpContext c) => Results.Content(AuditJson().ToJsonString(), "application/json"));
        if (_cloudStack is not null)
        {
            _control.Map("/client/api", _cloudStack.HandleAsync);
        }

        await _control.StartAsync(cancellationToken);
        var controlPort = new Uri(_control.Urls.First()).Port;
        AuditUrl = new Uri($"http://127.0.0.1:{controlPort}/audit");

        // SSH: a real sshd per host where OpenSSH is installed.
        if (LabSshd.IsAvailable)
        {
            // sshd start-up is wall-clock work, not simulated time.
            _sshd = new LabSshd(Path.Combine(_stateDirectory, "ssh"), LabSshd.FindFreePort(addresses), TimeProvider.System);
            await Task.WhenAll(_pool.Hosts.Select(h => Task.Run(() => _sshd.StartHostAsync(h.Name, h.Address, h.BootId, cancellationToken), cancellationToken)));
        }
        else
        {
            await _log.WriteLineAsync("rollreboot lab: " + LabSshd.NotAvailableMessage + " The lab runs without SSH endpoints; the CLI then proves reboots through XAPI only (ROLLREBOOT_SSH=off).");
        }

        var servers = await Task.WhenAll(_pool.Hosts.Select(async h => (h.Name, App: await StartXapiAsync(h, cancellationToken))));
        foreach (var (name, app) in servers)
        {
            _xapiServers[name] = app;
        }

        _effectsWorker = Task.Run(RunEffectsAsync, CancellationToken.None);
        _timer = Task.Run(() => _pool.RunTimerAsync(_stop.Token), CancellationToken.None);

        var env = new Dictionary<string, string>
        {
            ["ROLLREBOOT_XAPI_URL"] = $"https://{_pool.Hosts[0].Address}:{_xapiPort}/",
            ["ROLLREBOOT_XAPI_USER"] = _pool.User,
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

    public (string ApiKey, string SecretKey)? CloudStackKeys { get; private set; }

    public int XapiPort => _xapiPort;

    /// <summary>The one line the lab prints on stdout when everything listens.</summary>
    public string ReadyLine() => new JsonObject
    {
        ["ready"] = true,
        ["env"] = new JsonObject(Environment.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["auditUrl"] = AuditUrl.ToString(),
    }.ToJsonString();

    public JsonObject AuditJson()
    {
        JsonObject pool;
        JsonArray hosts;
        JsonArray vms;
        double now;
        lock (_pool.Gate)
        {
            _pool.Advance();
            now = _pool.Now;
            pool = new JsonObject
            {
                ["name"] = _pool.Scenario.Pool.Name,
                ["master"] = _pool.Master.Name,
                ["haEnabled"] = _pool.HaEnabled,
                ["haConfiguration"] = new JsonObject(_pool.HaConfiguration.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["haHeartbeatSrs"] = new JsonArray(_pool.HaHeartbeatSrNames.Select(n => (JsonNode?)n).ToArray()),
                ["haHostFailuresToTolerate"] = _pool.HaHostFailuresToTolerate,
                ["haAllowOvercommit"] = _pool.HaAllowOvercommit,
                ["otherConfig"] = new JsonObject(_pool.PoolOtherConfig.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            };
            hosts = new JsonArray(_pool.Hosts.Select(h => (JsonNode?)new JsonObject
            {
                ["name"] = h.Name,
                ["uuid"] = h.Uuid,
                ["address"] = h.Address,
                ["memoryMiB"] = h.MemoryTotal / LabMemory.MiB,
                ["freeMiB"] = _pool.FreeBytes(h) / LabMemory.MiB,
                ["enabled"] = h.Enabled,
                ["live"] = h.Live,
                ["bootCount"] = h.BootCount,
                ["pendingGuidances"] = new JsonArray(h.PendingGuidances.Select(g => (JsonNode?)g).ToArray()),
            }).ToArray());
            vms = new JsonArray(_pool.Vms.Where(v => !v.IsControlDomain).Select(v => (JsonNode?)new JsonObject
            {
                ["name"] = v.Name,
                ["uuid"] = v.Uuid,
                ["memoryMiB"] = v.MemoryMiB,
                ["powerState"] = v.PowerState,
                ["residentOn"] = v.ResidentOn?.Name,
                ["migrations"] = v.Migrations,
            }).ToArray());
        }

        var (events, violations) = Audit.Snapshot();
        return new JsonObject
        {
            ["simulatedSeconds"] = Math.Round(now, 3),
            ["timeScale"] = TimeScale,
            ["pool"] = pool,
            ["cloudstack"] = _cloudStack is null ? null : System.Text.Json.JsonSerializer.SerializeToNode(_cloudStack.AuditSnapshot()),
            ["hosts"] = hosts,
            ["vms"] = vms,
            ["events"] = events,
            ["violations"] = violations,
        };
    }

    void ISimEnvironment.XapiServing(SimHost host, bool serving) =>
        _effects.Writer.TryWrite(async () =>
        {
            if (serving)
            {
                if (_xapiServers.GetValueOrDefault(host.Name) is null)
                {
                    _xapiServers[host.Name] = await StartXapiAsync(host, _stop.Token);
                }
            }
            else if (_xapiServers.GetValueOrDefault(host.Name) is { } app)
            {
                _xapiServers[host.Name] = null;
                await StopAppAsync(app);
            }
        });

    void ISimEnvironment.HostPowered(SimHost host, bool up)
    {
        var bootId = host.BootId;
        _effects.Writer.TryWrite(async () =>
        {
            if (_sshd is not null)
            {
                if (up)
                {
                    ApplySshFaults(host.Name);
                    _sshd.SetBootId(host.Name, bootId);
                    await _sshd.StartHostAsync(host.Name, host.Address, bootId, _stop.Token);
                }
                else
                {
                    await _sshd.StopHostAsync(host.Name);
                }
            }

            if (up)
            {
                _cloudStack?.OnHostUp(host.Name);
            }
            else
            {
                _cloudStack?.OnHostDown(host.Name);
            }
        });
    }

    /// <summary>SSH faults strike at the host's next boot: a new host key, or the CLI's key refused.</summary>
    private void ApplySshFaults(string hostName)
    {
        foreach (var f in _pool.Scenario.Faults.Where(f => f.Host == hostName && f.Times > 0 && f.Type is "sshHostKeyChanged" or "sshAuthFails").ToList())
        {
            f.Times--;
            if (f.Type == "sshHostKeyChanged")
            {
                _sshd!.ReplaceHostKey(hostName);
            }
            else
            {
                _sshd!.RefuseClientKey(hostName);
            }

            Audit.Event("ssh.fault", new Dictionary<string, object?> { ["host"] = hostName, ["fault"] = f.Type });
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

    private async Task<WebApplication> StartXapiAsync(SimHost host, CancellationToken cancellationToken)
    {
        var certificate = _certificates[host.Name];
        var handler = new XapiHttpHandler(_pool, host.Address);
        var app = BuildApp(builder => builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Parse(host.Address), _xapiPort, listen => listen.UseHttps(certificate));
            k.Limits.MaxRequestBodySize = 64 * 1024 * 1024;
        }));
        app.Run(handler.HandleAsync);
        await app.StartAsync(cancellationToken);
        return app;
    }

    private static WebApplication BuildApp(Action<WebApplicationBuilder> configure)
    {
        var builder = WebApplication.CreateSlimBuilder();
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
        var now = TimeProvider.System.GetUtcNow();
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
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

        if (_timer is not null)
        {
            await _timer;
        }

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
