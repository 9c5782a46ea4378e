using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;
using RollingReboot.Xapi;
using RollingReboot.Xapi.Tls;

namespace RollingReboot.Lab.Tests;

/// <summary>Starting labs and talking to them the way their users do.</summary>
internal static class Labs
{
    /// <summary>Simulated seconds per wall second for most tests: a 30 s reboot takes 0.15 s.</summary>
    public const double FastScale = 200;

    public static Task<LabRuntime> StartAsync(string scenarioJson, double timeScale = FastScale) =>
        LabRuntime.StartAsync(ScenarioLoader.Parse(scenarioJson), timeScale, TextWriter.Null);

    public static IReadOnlyList<string> Pins(LabRuntime lab) => lab.Environment["ROLLREBOOT_XAPI_CERT_SHA256"].Split(',');

    /// <summary>The project's XenAPI client on the lab's clock, pointed at <paramref name="address"/> (default: the lab's URL).</summary>
    public static XapiClient Client(LabRuntime lab, string? address = null) => new(new XapiClientOptions
    {
        Url = address is null ? new Uri(lab.Environment["ROLLREBOOT_XAPI_URL"]) : Url(lab, address),
        UserName = lab.Environment["ROLLREBOOT_XAPI_USER"],
        Password = lab.Environment["ROLLREBOOT_XAPI_PASSWORD"],
        Certificates = new XapiCertificatePolicy(Pins(lab)),
        TimeProvider = lab.Clock,
        MasterSearchTimeout = TimeSpan.FromSeconds(600),
        CallTimeout = TimeSpan.FromSeconds(30),
    });

    public static Uri Url(LabRuntime lab, string address, string path = "/") =>
        new($"https://{address}:{lab.XapiPort.ToString(CultureInfo.InvariantCulture)}{path}");

    /// <summary>An HttpClient that trusts exactly the lab's pinned certificates, as a careful generic client would.</summary>
    public static HttpClient PinnedHttp(LabRuntime lab)
    {
        var pins = Pins(lab).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(5),
            PooledConnectionLifetime = TimeSpan.FromSeconds(30),
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                    certificate is not null && pins.Contains(Convert.ToHexStringLower(SHA256.HashData(certificate.GetRawCertData()))),
            },
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>The address of a host, by its scenario name (the lab gives 127.0.0.2, .3, ... in scenario order).</summary>
    public static string Address(LabRuntime lab, string hostName) =>
        Audit.Host(lab.AuditJson(), hostName)["address"]!.GetValue<string>();
}

/// <summary>Reading the audit (<c>lab.AuditJson()</c>).</summary>
internal static class Audit
{
    public static IReadOnlyList<JsonObject> Events(JsonObject audit, string type, string? host = null, string? vm = null) =>
        audit["events"]!.AsArray().OfType<JsonObject>()
            .Where(e => e["type"]!.GetValue<string>() == type)
            .Where(e => host is null || e["host"]?.GetValue<string>() == host)
            .Where(e => vm is null || e["vm"]?.GetValue<string>() == vm)
            .ToList();

    public static double T(JsonObject e) => e["t"]!.GetValue<double>();

    public static double Now(JsonObject audit) => audit["simulatedSeconds"]!.GetValue<double>();

    public static JsonObject Host(JsonObject audit, string name) =>
        audit["hosts"]!.AsArray().OfType<JsonObject>().Single(h => h["name"]!.GetValue<string>() == name);

    public static JsonObject Vm(JsonObject audit, string name) =>
        audit["vms"]!.AsArray().OfType<JsonObject>().Single(v => v["name"]!.GetValue<string>() == name);

    public static IReadOnlyList<string> Violations(JsonObject audit) =>
        audit["violations"]!.AsArray().Select(v => v!.GetValue<string>()).ToList();
}

/// <summary>Bounded waits on conditions (never a bare sleep).</summary>
internal static class Wait
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(20);

    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? Default;
        var start = TimeProvider.System.GetTimestamp();
        while (!condition())
        {
            if (TimeProvider.System.GetElapsedTime(start) > limit)
            {
                Assert.Fail($"timed out after {limit.TotalSeconds:0} s waiting for {what}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(5), TimeProvider.System);
        }
    }

    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? Default;
        var start = TimeProvider.System.GetTimestamp();
        while (!await condition())
        {
            if (TimeProvider.System.GetElapsedTime(start) > limit)
            {
                Assert.Fail($"timed out after {limit.TotalSeconds:0} s waiting for {what}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(5), TimeProvider.System);
        }
    }

    public static async Task<T> ForAsync<T>(Func<Task<T?>> probe, string what, TimeSpan? timeout = null)
        where T : class
    {
        var limit = timeout ?? Default;
        var start = TimeProvider.System.GetTimestamp();
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            if (TimeProvider.System.GetElapsedTime(start) > limit)
            {
                Assert.Fail($"timed out after {limit.TotalSeconds:0} s waiting for {what}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(5), TimeProvider.System);
        }
    }

    /// <summary>Waits until the audit has an event of <paramref name="type"/> (for <paramref name="host"/>) and returns it.</summary>
    public static async Task<JsonObject> ForEventAsync(LabRuntime lab, string type, string? host = null, string? vm = null, int count = 1, TimeSpan? timeout = null)
    {
        JsonObject? found = null;
        await UntilAsync(() =>
        {
            var events = Audit.Events(lab.AuditJson(), type, host, vm);
            found = events.Count >= count ? events[count - 1] : null;
            return found is not null;
        }, $"audit event {type}{(host is null ? "" : " of " + host)}{(vm is null ? "" : " of " + vm)}", timeout);
        return found!;
    }

    /// <summary>Waits until the lab's clock has passed <paramref name="simulatedSeconds"/>.</summary>
    public static Task UntilSimulatedAsync(LabRuntime lab, double simulatedSeconds) =>
        UntilAsync(() => Audit.Now(lab.AuditJson()) > simulatedSeconds, $"simulated second {simulatedSeconds:0.0}");
}

/// <summary>An error XAPI answered on the wire, whichever shape it came in.</summary>
internal sealed class RawXapiError(string code, IReadOnlyList<string> parameters, JsonObject response)
    : Exception($"{code} [{string.Join(", ", parameters)}]")
{
    public string Code { get; } = code;

    public IReadOnlyList<string> Parameters { get; } = parameters;

    public JsonObject Response { get; } = response;
}

/// <summary>Hand-written JSON-RPC (and raw HTTP) against one lab: the wire itself, without the project's client.</summary>
internal sealed class RawXapi : IDisposable
{
    private readonly LabRuntime _lab;
    private readonly HttpClient _http;
    private long _id;

    public RawXapi(LabRuntime lab)
    {
        _lab = lab;
        _http = Labs.PinnedHttp(lab);
    }

    public string User => _lab.Environment["ROLLREBOOT_XAPI_USER"];

    public string Password => _lab.Environment["ROLLREBOOT_XAPI_PASSWORD"];

    public async Task<(HttpStatusCode Status, string ContentType, string Body)> PostAsync(string address, string path, string body, string contentType = "application/json")
    {
        using var content = new StringContent(body, Encoding.UTF8, contentType);
        using var response = await _http.PostAsync(Labs.Url(_lab, address, path), content);
        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType ?? "", await response.Content.ReadAsStringAsync());
    }

    /// <summary>Sends a JSON-RPC request object as is and returns the parsed answer (HTTP 200 expected).</summary>
    public async Task<JsonObject> SendAsync(string address, JsonObject request)
    {
        var (status, contentType, body) = await PostAsync(address, "/jsonrpc", request.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("application/json", contentType);
        return (JsonObject)JsonNode.Parse(body)!;
    }

    public JsonObject Request(string method, IEnumerable<JsonNode?> parameters, bool v2 = true)
    {
        var request = new JsonObject { ["method"] = method, ["params"] = new JsonArray(parameters.ToArray()), ["id"] = Interlocked.Increment(ref _id) };
        if (v2)
        {
            request["jsonrpc"] = "2.0";
        }

        return request;
    }

    /// <summary>JSON-RPC 2.0 call: the result, or a <see cref="RawXapiError"/> for either error shape.</summary>
    public async Task<JsonNode?> CallAsync(string address, string method, params JsonNode?[] parameters)
    {
        var response = await SendAsync(address, Request(method, parameters));
        switch (response["error"])
        {
            case null:
                return response["result"];
            case JsonArray a:
                throw new RawXapiError(a[0]!.GetValue<string>(), a.Skip(1).Select(p => p!.ToString()).ToList(), response);
            case JsonObject o:
                throw new RawXapiError(o["message"]!.GetValue<string>(), (o["data"] as JsonArray)?.Select(p => p!.ToString()).ToList() ?? [], response);
            default:
                throw new InvalidOperationException("unexpected error shape: " + response.ToJsonString());
        }
    }

    public async Task<string> LoginAsync(string address)
    {
        var session = await CallAsync(address, "session.login_with_password", User, Password, "1.1", "lab-tests");
        return session!.GetValue<string>();
    }

    public async Task<RawXapiError> FailsAsync(string address, string method, params JsonNode?[] parameters) =>
        await Assert.ThrowsAsync<RawXapiError>(() => CallAsync(address, method, parameters));

    /// <summary>Whether the host's XAPI accepts connections at all (false: refused or cut).</summary>
    public async Task<bool> AnswersAsync(string address)
    {
        try
        {
            await PostAsync(address, "/jsonrpc", Request("system.listMethods", []).ToJsonString());
            return true;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    public static bool IsRefused(HttpRequestException e) =>
        e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused };

    /// <summary>The ref of the object of <paramref name="cls"/> named <paramref name="nameLabel"/>.</summary>
    public async Task<string> RefAsync(string address, string session, string cls, string nameLabel)
    {
        var refs = (await CallAsync(address, cls + ".get_by_name_label", session, nameLabel))!.AsArray();
        return Assert.Single(refs)!.GetValue<string>();
    }

    /// <summary>Polls <c>task.get_record</c> until the task is no longer pending.</summary>
    public async Task<JsonObject> WaitTaskAsync(string address, string session, string task) =>
        await Wait.ForAsync(async () =>
        {
            var record = (JsonObject)(await CallAsync(address, "task.get_record", session, task))!;
            return record["status"]!.GetValue<string>() == "pending" ? null : record;
        }, "task " + task + " to finish");

    public void Dispose() => _http.Dispose();
}
