import torch

from scripts.diffusion import predict_x0, pure_noise, q_sample, sample_timesteps


def test_schedule_is_the_papers_linear_schedule(scheduler):
    betas = torch.linspace(1e-4, 0.02, 1000)
    assert torch.allclose(scheduler.alphas_cumprod, torch.cumprod(1 - betas, 0), atol=1e-6)


def test_q_sample_then_inverse_recovers_x0(scheduler):
    torch.manual_seed(0)
    x0 = torch.rand(6, 2, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    timesteps = torch.tensor([0, 1, 100, 500, 900, 999])
    x_t = q_sample(scheduler, x0, noise, timesteps)
    a = scheduler.alphas_cumprod[timesteps].view(-1, 1, 1, 1)
    assert torch.allclose(x_t, a.sqrt() * x0 + (1 - a).sqrt() * noise, atol=1e-6)
    assert torch.allclose(predict_x0(scheduler, x_t, noise, timesteps), x0, atol=1e-3)
    # the wrong noise does not recover x0: the inverse really uses its input
    assert not torch.allclose(predict_x0(scheduler, x_t, torch.zeros_like(noise), timesteps), x0, atol=1e-2)


def test_pure_noise_is_noised_zeros(scheduler):
    timesteps = torch.tensor([0, 999])
    generator = torch.Generator().manual_seed(1)
    noise = pure_noise(scheduler, (2, 1, 64, 64), timesteps, torch.zeros(1), generator)
    expected_std = (1 - scheduler.alphas_cumprod[timesteps]).sqrt()
    assert torch.allclose(noise.flatten(1).std(1), expected_std, rtol=0.1)


def test_sample_timesteps_covers_range(scheduler):
    t = sample_timesteps(scheduler, 5000, "cpu")
    assert t.dtype == torch.long and t.min() >= 0 and t.max() <= 999 and t.unique().numel() > 900


def test_noise_space_loss_is_the_image_space_loss_weighted_by_the_signal_to_noise_ratio(scheduler):
    from scripts.diffusion import implied_noise, reconstruction_loss

    torch.manual_seed(0)
    x0, noise = torch.rand(3, 1, 8, 8) * 2 - 1, torch.randn(3, 1, 8, 8)
    timesteps = torch.tensor([10, 400, 900])
    x_t = q_sample(scheduler, x0, noise, timesteps)
    assert torch.allclose(implied_noise(scheduler, x_t, x0, timesteps), noise, atol=1e-4)
    predicted = noise + 0.1 * torch.randn_like(noise)
    image = reconstruction_loss(scheduler, x0, x_t, predicted, timesteps, "image")
    in_noise = reconstruction_loss(scheduler, x0, x_t, predicted, timesteps, "noise")
    snr = scheduler.alphas_cumprod[timesteps] / (1 - scheduler.alphas_cumprod[timesteps])
    assert torch.allclose(in_noise, image * snr, rtol=1e-3)


def test_clip_in_the_loss_stops_the_gradient_that_a_display_clip_keeps(scheduler):
    from scripts.diffusion import ImageReconstruction

    class Far(torch.nn.Module):  # an image pathway whose reconstruction lands far outside [-1, 1]
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(50.0))

        def forward(self, noisy_image, mask, timesteps, pathway):
            assert pathway == "image"
            return self.scale * torch.ones_like(noisy_image)

    image, t = torch.zeros(2, 1, 4, 4), torch.tensor([500, 600])
    for clip_in_loss, expect_gradient in ((True, False), (False, True)):
        network = Far()
        loss, reconstruction = ImageReconstruction(scheduler, clip_in_loss=clip_in_loss)(network, image, None, t)
        loss.mean().backward()
        assert reconstruction.abs().max() <= 1.0  # what is shown and passed on is clipped either way
        assert (network.scale.grad.abs() > 0).item() == expect_gradient
