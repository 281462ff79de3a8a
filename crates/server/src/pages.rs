//! Server-rendered HTML pages (minijinja templates embedded in the binary, autoescaped).

use crate::assets::Assets;
use minijinja::Environment;
use std::sync::Arc;

pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn new(assets: Arc<Assets>) -> anyhow::Result<Pages> {
        let mut env = Environment::new();
        env.add_template("base.html", include_str!("../templates/base.html"))?;
        env.add_template("theme.html", include_str!("../templates/theme.html"))?;
        env.add_template("landing.html", include_str!("../templates/landing.html"))?;
        env.add_template("display.html", include_str!("../templates/display.html"))?;
        env.add_template("kiosk.html", include_str!("../templates/kiosk.html"))?;
        env.add_template("kitchen.html", include_str!("../templates/kitchen.html"))?;
        env.add_template("receipt.html", include_str!("../templates/receipt.html"))?;
        env.add_template(
            "storefront.html",
            include_str!("../templates/storefront.html"),
        )?;
        env.add_template(
            "storefront_menu.html",
            include_str!("../templates/storefront_menu.html"),
        )?;
        env.add_function("asset", move |name: String| assets.url(&name));
        Ok(Pages { env })
    }

    pub fn render(&self, name: &str, ctx: minijinja::Value) -> anyhow::Result<String> {
        Ok(self.env.get_template(name)?.render(ctx)?)
    }
}
