using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using RollingReboot.Core.Ports;

namespace RollingReboot.Cli.Adapters;

/// <summary>
/// The active alerts of a Prometheus server, from its HTTP API: <c>GET /api/v1/alerts</c> (prometheus.io/docs/prometheus/latest/querying/api/#alerts),
/// <c>{"status":"success","data":{"alerts":[{"labels":{"alertname":...},"state":"pending"|"firing",...}]}}</c>. That is the
/// set kured reads with the query <c>ALERTS</c> (one series per pending or firing alert). Credentials in the URL
/// (<c>https://user:pass@prom/</c>) are sent as HTTP basic authentication and never written anywhere:
/// <see cref="Description"/> has the scheme, host and port only.
/// </summary>
internal sealed class PrometheusAlerts : IAlertSource, IDisposable
{
    /// <summary>One question's bound, on the wall clock (it is about the network, not the simulated pool).</summary>
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    private readonly HttpClient _http;
    private readonly Uri _alerts;

    public PrometheusAlerts(Uri url, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(url);
        Description = $"Prometheus at {Redact(url)}";
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.Timeout = s_timeout;
        if (url.UserInfo is { Length: > 0 } userInfo)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.UnescapeDataString(userInfo))));
        }

        // Behind a path prefix (https://host/prometheus/) the API is under it.
        var withoutCredentials = new UriBuilder(url) { UserName = "", Password = "" }.Uri;
        var basePath = withoutCredentials.AbsolutePath.EndsWith('/') ? withoutCredentials : new Uri(withoutCredentials.AbsoluteUri + "/");
        _alerts = new Uri(basePath, "api/v1/alerts");
    }

    public string Description { get; }

    /// <summary>The URL as it may be logged: scheme, host and port.</summary>
    public static string Redact(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        return $"{url.Scheme}://{url.Host}{(url.IsDefaultPort ? "" : ":" + url.Port.ToString(System.Globalization.CultureInfo.InvariantCulture))}";
    }

    public async Task<IReadOnlyList<ActiveAlert>> GetActiveAlertsAsync(CancellationToken cancellationToken = default)
    {
        string body;
        try
        {
            using var response = await _http.GetAsync(_alerts, cancellationToken);
            body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw new AlertSourceException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            }
        }
        catch (HttpRequestException e)
        {
            // The message names the host and port only (HttpClient never puts credentials in it).
            throw new AlertSourceException(e.HttpRequestError == HttpRequestError.Unknown ? e.Message : $"{e.HttpRequestError}: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AlertSourceException($"no answer within {s_timeout.TotalSeconds:0} s", e);
        }

        return Parse(body);
    }

    internal static IReadOnlyList<ActiveAlert> Parse(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("status", out var status) || status.GetString() != "success"
                || !root.TryGetProperty("data", out var data) || !data.TryGetProperty("alerts", out var alerts) || alerts.ValueKind != JsonValueKind.Array)
            {
                var error = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error", out var e) ? e.GetString() : null;
                throw new AlertSourceException(error is null ? "the answer is not a list of alerts (status success, data.alerts)" : "Prometheus says: " + error);
            }

            var list = new List<ActiveAlert>();
            foreach (var a in alerts.EnumerateArray())
            {
                var name = a.TryGetProperty("labels", out var labels) && labels.TryGetProperty("alertname", out var n) ? n.GetString() : null;
                var state = a.TryGetProperty("state", out var s) ? s.GetString() : null;
                // Only active alerts count; "inactive" never comes from this endpoint, but is not an alert either.
                if (name is not null && state is not null and not "inactive")
                {
                    list.Add(new ActiveAlert(name, state));
                }
            }

            return list;
        }
        catch (JsonException e)
        {
            throw new AlertSourceException("the answer is not JSON (" + e.Message.Split(" LineNumber:", 2)[0] + ")", e);
        }
    }

    public void Dispose() => _http.Dispose();
}
