using System.Net;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>A local webhook endpoint (a real HTTP listener, as Slack's or Teams' would be) that records each body as sent.</summary>
internal sealed class WebhookEndpoint : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<(string ContentType, string Body)> _posts = [];
    private readonly Task _loop;

    public WebhookEndpoint()
    {
        int port;
        using (var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
        }

        Url = $"http://127.0.0.1:{port}/hook/T000/B000/secret-token";
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/hook/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public string Url { get; }

    /// <summary>Each body as JSON (the default notifications).</summary>
    public List<System.Text.Json.Nodes.JsonObject> Messages => [.. Posts.Select(p => System.Text.Json.Nodes.JsonNode.Parse(p.Body)!.AsObject())];

    public List<(string ContentType, string Body)> Posts
    {
        get
        {
            lock (_posts)
            {
                return [.. _posts];
            }
        }
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            using (var reader = new StreamReader(context.Request.InputStream))
            {
                var body = await reader.ReadToEndAsync();
                lock (_posts)
                {
                    _posts.Add((context.Request.ContentType ?? "", body));
                }
            }

            context.Response.StatusCode = 200;
            context.Response.Close();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}
