using System.Net.Http.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Adapters;

/// <summary>
/// <c>--notify URL</c>: posts each notification as JSON with a Slack-compatible <c>text</c> field, in order,
/// from a background queue so the run never waits on it. A failed post is logged (without the URL, which may
/// hold a token) and dropped. Disposing waits a bounded time for what is queued. With <c>--notify-template</c> the body
/// is the template filled in (<see cref="NotifyTemplate"/>) instead.
/// </summary>
internal sealed class WebhookNotifier : IRunNotifier, IAsyncDisposable
{
    private static readonly TimeSpan s_postTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_drainTimeout = TimeSpan.FromSeconds(20);

    private readonly Channel<(RunNotification Message, DateTimeOffset At)> _queue = Channel.CreateUnbounded<(RunNotification, DateTimeOffset)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly HttpClient _http;
    private readonly Uri _url;
    private readonly IRunLog _log;
    private readonly TimeProvider _clock;
    private readonly NotifyTemplate? _template;
    private readonly Task _worker;
    private int _sent;
    private int _failed;

    public WebhookNotifier(Uri url, IRunLog log, TimeProvider clock, HttpMessageHandler? handler = null, NotifyTemplate? template = null)
    {
        _url = url;
        _template = template;
        _log = log;
        _clock = clock;
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.Timeout = s_postTimeout;
        _worker = Task.Run(PostAllAsync);
    }

    /// <summary>The URL as it may be logged: scheme, host and port only.</summary>
    public static string Redact(Uri url) => $"{url.Scheme}://{url.Authority}/...";

    public static Uri Parse(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || url.Scheme is not ("https" or "http"))
        {
            throw new UserFacingException("--notify / ROLLREBOOT_NOTIFY_URL must be an http(s) URL (e.g. a Slack incoming webhook)");
        }

        return url;
    }

    public void Notify(RunNotification notification) => _queue.Writer.TryWrite((notification, _clock.GetUtcNow()));

    private async Task PostAllAsync()
    {
        await foreach (var (n, at) in _queue.Reader.ReadAllAsync())
        {
            try
            {
                using var response = _template is null
                    ? await _http.PostAsJsonAsync(_url, new Payload(n.Text, n.Event, n.Cluster, n.Pool, n.RunId, n.Host, n.Outcome, at.ToString("O", System.Globalization.CultureInfo.InvariantCulture)), PayloadContext.Default.Payload)
                    : await PostTemplateAsync(_template, n, at);
                if (!response.IsSuccessStatusCode)
                {
                    throw new HttpRequestException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
                }

                _sent++;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or OperationCanceledException)
            {
                _failed++;
                _log.Warn("Notification '{Event}' to {Url} failed: {Error} (the run goes on)", n.Event, Redact(_url), e.Message);
            }
        }
    }

    private async Task<HttpResponseMessage> PostTemplateAsync(NotifyTemplate template, RunNotification n, DateTimeOffset at)
    {
        using var content = new StringContent(template.Render(n, at), System.Text.Encoding.UTF8, template.MediaType);
        return await _http.PostAsync(_url, content);
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        try
        {
            await _worker.WaitAsync(s_drainTimeout, TimeProvider.System);
        }
        catch (TimeoutException)
        {
            _log.Warn("Notifications still queued after {Seconds} s were dropped", s_drainTimeout.TotalSeconds);
        }

        if (_failed > 0)
        {
            _log.Warn("{Failed} of {Total} notification(s) could not be sent", _failed, _failed + _sent);
        }

        _http.Dispose();
    }

    internal sealed record Payload(
        [property: JsonPropertyName("text")] string Text,
        [property: JsonPropertyName("event")] string Event,
        [property: JsonPropertyName("cluster")] string Cluster,
        [property: JsonPropertyName("pool")] string Pool,
        [property: JsonPropertyName("runId")] string RunId,
        [property: JsonPropertyName("host")] string? Host,
        [property: JsonPropertyName("outcome")] string? Outcome,
        [property: JsonPropertyName("time")] string Time);
}

[JsonSerializable(typeof(WebhookNotifier.Payload))]
internal sealed partial class PayloadContext : JsonSerializerContext;
