using System.Diagnostics.Tracing;
using System.Text.Json.Nodes;
using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Bench;

/// <summary>
/// One lab, in this process, with a count of the HTTP requests its servers receive: the ASP.NET Core hosting
/// EventSource reports every request's method and path, so XAPI calls (POST / and /jsonrpc on the simulated hosts)
/// and CloudStack calls (/client/api) are counted on the server side, whoever makes them.
/// </summary>
public sealed class LabSession : IAsyncDisposable
{
    private readonly RequestCounter _counter;

    private LabSession(LabRuntime lab, RequestCounter counter)
    {
        Lab = lab;
        _counter = counter;
    }

    public LabRuntime Lab { get; }

    public long XapiRequests => _counter.Xapi;

    public long CloudStackRequests => _counter.CloudStack;

    public static async Task<LabSession> StartAsync(ScenarioFile scenario, double timeScale, CancellationToken cancellationToken)
    {
        var counter = new RequestCounter();
        try
        {
            var lab = await LabRuntime.StartAsync(scenario, timeScale, TextWriter.Null, cancellationToken);
            return new LabSession(lab, counter);
        }
        catch
        {
            counter.Dispose();
            throw;
        }
    }

    public void ResetCounts() => _counter.Reset();

    /// <summary>The audit as the contract's JSON (re-parsed, so numbers read as any numeric type).</summary>
    public JsonObject Audit() => (JsonObject)JsonNode.Parse(Lab.AuditJson().ToJsonString())!;

    public async ValueTask DisposeAsync()
    {
        await Lab.DisposeAsync();
        _counter.Dispose();
    }

    private sealed class RequestCounter : EventListener
    {
        private long _xapi;
        private long _cloudStack;

        public long Xapi => Interlocked.Read(ref _xapi);

        public long CloudStack => Interlocked.Read(ref _cloudStack);

        public void Reset()
        {
            Interlocked.Exchange(ref _xapi, 0);
            Interlocked.Exchange(ref _cloudStack, 0);
        }

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft.AspNetCore.Hosting")
            {
                EnableEvents(eventSource, EventLevel.Informational);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
            if (eventData.EventName != "RequestStart" || eventData.Payload is not { Count: >= 2 } payload)
            {
                return;
            }

            var path = payload[1] as string ?? "";
            if (path is "/" or "/jsonrpc" or "/RPC2")
            {
                Interlocked.Increment(ref _xapi);
            }
            else if (path.StartsWith("/client/api", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _cloudStack);
            }
        }
    }
}
